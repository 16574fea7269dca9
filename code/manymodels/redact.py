"""Take secrets out of text before it reaches a log, report, summary or artifact.

Credentials travel inside URIs (``postgresql://user:password@host/db``,
``https://token@host``) and query strings (``?token=...``, ``&sig=...``, ``password=...``).
:func:`redact` masks them and leaves the rest readable, so a log still says which server and
database a step talked to. Apply it to every URI a step writes out, and to error messages that
may quote one.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"

# scheme://user:password@ or scheme://token@ (a user without a password is often a token)
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/@:?#]*)(?::[^\s/@]*)?@"
)
# name=value pairs whose name says secret: query strings, DSNs, connection strings
_SECRET_PAIR = re.compile(
    r"(?i)(?P<name>\b[\w.\-]*(?:token|password|passwd|pwd|secret|sig|signature|credential"
    r"|api[_\-]?key|access[_\-]?key|account[_\-]?key|auth)[\w.\-]*|(?<=[?&;])key)(?P<sep>=)"
    r"(?P<value>[^\s&#;'\"]+)"
)


def redact(text: object) -> str:
    """``text`` (a URI, a message, anything printable) with credentials masked.

    ``postgresql://scorer:pw@db/x?sslpassword=y`` becomes ``postgresql://scorer:***@db/x?
    sslpassword=***``; ``https://ghp_abc@github.com`` becomes ``https://***@github.com``.

    Args:
        text: what is about to be logged or written; ``None`` gives ``""``.

    Returns:
        The text with every password, token, key and signature replaced by ``***``.
    """
    if text is None:
        return ""
    out = _USERINFO.sub(_mask_userinfo, str(text))
    return _SECRET_PAIR.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", out)


def _mask_userinfo(match: re.Match) -> str:
    has_password = ":" in match.group(0)[len(match["scheme"]) :]
    if has_password and match["user"]:
        return f"{match['scheme']}{match['user']}:{MASK}@"
    return f"{match['scheme']}{MASK}@"
