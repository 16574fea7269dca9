"""Throwaway servers on loopback for benchmarks and tests: a PostgreSQL cluster, a real
``mlflow server``, and free ports.

Nothing here is used by the pipeline itself; it stands in for the shared services a team runs
(a tracking server, a database), so that benchmarks and tests talk to the real thing::

    with localservers.postgres() as db, localservers.mlflow_server(db, tmp / "mlflow") as url:
        ...  # MlflowClient(url) against a real server backed by a real PostgreSQL

PostgreSQL is Debian's ``postgresql`` (``make postgres`` installs it; binaries on PATH or in
``/usr/lib/postgresql/<major>/bin``) with the ``psycopg`` driver (the ``dev`` extra). ``initdb``
refuses root, so as root the cluster runs as the ``postgres`` user through ``runuser``. Where
either is missing, :func:`postgres` raises :class:`Unavailable` with the reason (a test skips on
it: :func:`postgres_missing` says why beforehand).

The MLflow server runs ``python -m mlflow server`` of this interpreter, with telemetry off,
``HOME`` in its own folder and no job runner (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: no
huey workers for MLflow's GenAI jobs, which a registry benchmark does not need).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "MlflowServer",
    "ServerError",
    "Unavailable",
    "free_port",
    "mlflow_server",
    "postgres",
    "postgres_bin",
    "postgres_missing",
    "server_env",
]

# what a server started here always gets: no telemetry, no GenAI job runner
SERVER_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class Unavailable(RuntimeError):
    """What a local server needs is not installed (the message says what to install)."""


class ServerError(RuntimeError):
    """A local server did not start (the message names its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin(name: str, root: str | Path = "/usr/lib/postgresql") -> str | None:
    """A PostgreSQL binary (``initdb``, ``pg_ctl``) from PATH, else the newest of Debian's
    ``<root>/<major>/bin``; None when there is none."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path(root).glob(f"*/bin/{name}"), key=lambda p: _major(p.parts[-3]))
    return str(versions[-1]) if versions else None


def _major(folder: str) -> tuple[int, str]:
    return (int(folder), "") if folder.isdigit() else (-1, folder)


def postgres_missing() -> str | None:
    """Why :func:`postgres` cannot start a cluster here, or None when it can."""
    if not (postgres_bin("initdb") and postgres_bin("pg_ctl")):
        return "PostgreSQL is not installed (make postgres, or apt-get install -y postgresql)"
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        return "the PostgreSQL driver psycopg is not installed (pip install -e '.[dev]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root (initdb refuses root) and there is no runuser"
    return None


@contextlib.contextmanager
def postgres(
    user: str = "mlflow", password: str | None = None, *, fsync: bool = False, timeout: float = 180
) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (removed afterwards); yields its SQLAlchemy
    URL ``postgresql+psycopg://<user>[:<password>]@127.0.0.1:<port>/postgres``.

    Args:
        user: the cluster's superuser.
        password: None: trust authentication; else the only way in (``scram-sha-256``).
        fsync: off by default (a throwaway cluster: nothing to keep after a crash).
        timeout: seconds ``initdb`` and ``pg_ctl`` may take each (minutes on a loaded machine).

    Raises:
        Unavailable: PostgreSQL or psycopg is not installed (see :func:`postgres_missing`).
    """
    missing = postgres_missing()
    if missing:
        raise Unavailable(missing)
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="mm-pg-"))  # its own folder: the postgres user owns it
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(
            [*as_user, *cmd], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode:
            raise ServerError(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout)[-800:]}")

    auth = ["-A", "trust"]
    if password is not None:
        (root / "pw").write_text(password)
        if as_user:
            shutil.chown(root / "pw", "postgres")
        auth = ["-A", "scram-sha-256", f"--pwfile={root / 'pw'}"]
    try:
        run(initdb, "-D", str(data), "-U", user, *auth)
        (root / "pw").unlink(missing_ok=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        options += "" if fsync else " -c fsync=off -c synchronous_commit=off"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    secret = f":{password}" if password is not None else ""
    try:
        yield f"postgresql+psycopg://{user}{secret}@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def server_env(root: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server started in ``root``: ``base`` (default: this process's),
    ``HOME`` in ``root`` and :data:`SERVER_ENV`."""
    return dict(os.environ if base is None else base) | {"HOME": str(root)} | SERVER_ENV


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 that can be stopped and started again (same port,
    same store): ``start()`` returns its URL, ``stop()`` ends it.

    Args:
        root: its folder: ``server.log``, ``artifacts/`` and, by default, ``mlflow.db``.
        backend_uri: the backend store (default: sqlite in ``root``).
        workers: ``--workers`` (uvicorn worker processes).
        env: the environment to start from (default: this process's; see :func:`server_env`).
    """

    def __init__(
        self,
        root: str | Path,
        backend_uri: str | None = None,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.backend_uri = backend_uri or f"sqlite:///{self.root / 'mlflow.db'}"
        self.port, self.workers, self.proc = free_port(), workers, None
        self.env = server_env(self.root, env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "server.log"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self.workers),
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.root / "artifacts"),
        ]  # fmt: skip

    def start(self, timeout: float = 600) -> str:
        """Start the server and wait until ``/health`` answers (``timeout`` seconds: minutes on
        a loaded machine); returns its URL.

        Raises:
            ServerError: it exited or did not answer in time (it is stopped; see its log).
        """
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.root, stdout=log, stderr=log, env=self.env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self.url
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(graceful=False)
                raise ServerError(f"mlflow server did not start; see {self.log}")
            time.sleep(0.5)

    def stop(self, *, graceful: bool = True) -> None:
        """End the server and its workers: SIGTERM (then SIGKILL after 30 s), or at once with
        SIGKILL (``graceful=False``: as a crash would). Nothing happens when it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def __enter__(self) -> MlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def mlflow_server(
    backend_uri: str | None,
    root: str | Path,
    workers: int = 1,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> Iterator[str]:
    """A real ``mlflow server`` (see :class:`MlflowServer`) for the ``with`` block; yields its
    URL and stops it (and its workers) afterwards."""
    server = MlflowServer(root, backend_uri, workers=workers, env=env)
    try:
        yield server.start(timeout)
    finally:
        server.stop()
