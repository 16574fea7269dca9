"""Copy what an actions/upload-artifact step names into ``$STANDIN_ARTIFACTS/<name>/``.

Mirrors upload-artifact v4: one path, folder or glob a line, ``!`` lines exclude, files are stored
relative to the least common ancestor of the search paths, hidden files are left out unless
asked for, ``if-no-files-found`` decides between warn, error and ignore, and a second upload
under the same name fails unless ``overwrite`` is true.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

GLOB_CHARS = set("*?[")


def _search_root(pattern: str) -> Path:
    """The non-glob leading part of a pattern, as upload-artifact uses for the common root."""
    parts = []
    for part in Path(pattern).parts:
        if GLOB_CHARS & set(part):
            break
        parts.append(part)
    root = Path(*parts) if parts else Path(".")
    return root if root.is_dir() or not root.exists() else root.parent


def _expand(pattern: str) -> list[Path]:
    matched = []
    for hit in sorted(glob.glob(pattern, recursive=True)):
        path = Path(hit)
        if path.is_dir():
            matched += [p for p in sorted(path.rglob("*")) if p.is_file()]
        elif path.is_file():
            matched.append(path)
    return matched


def _hidden(path: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def main() -> int:
    name = os.environ["NAME"]
    lines = [line.strip() for line in os.environ["PATHS"].splitlines() if line.strip()]
    include = [line for line in lines if not line.startswith("!")]
    exclude = {p.resolve() for line in lines if line.startswith("!") for p in _expand(line[1:])}
    files = [p for line in include for p in _expand(line) if p.resolve() not in exclude]
    if os.environ.get("INCLUDE_HIDDEN", "false") != "true":
        files = [p for p in files if not _hidden(p)]
    if not files:
        mode = os.environ.get("IF_NO_FILES_FOUND", "warn")
        message = f"No files were found with the provided path: {' '.join(include)}."
        if mode == "error":
            print(f"::error::{message} No artifacts will be uploaded.")  # noqa: T201
            return 1
        if mode == "warn":
            print(f"::warning::{message} No artifacts will be uploaded.")  # noqa: T201
        return 0
    roots = [_search_root(line).resolve() for line in include]
    common = Path(os.path.commonpath([str(r) for r in roots]))
    dest = Path(os.environ["STANDIN_ARTIFACTS"]) / name
    if dest.exists():
        if os.environ.get("OVERWRITE", "false") != "true":
            print(f"::error::an artifact named {name!r} was already uploaded in this run")  # noqa: T201
            return 1
        shutil.rmtree(dest)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    for path in unique:
        target = dest / path.relative_to(common)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    print(f"upload-artifact stand-in: {len(unique)} file(s) as {name!r} -> {dest}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
