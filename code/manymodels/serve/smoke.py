"""Smoke test of the online API as deployed after batch scoring (``make serve-smoke``).

Starts ``manymodels serve`` with the given options on a free loopback port, waits until it is
ready, forecasts a few series of the feature snapshot (one per partition, up to ``--series``),
checks an unknown series gets 404 and that /metrics counts the requests, then stops the server
(by its PID) whatever happened. Exits 0 when every check passed, 1 otherwise (with the server's
log), 2 on bad settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from manymodels.config import load_settings
from manymodels.serve.snapshot import Snapshot, snapshot_path

__all__ = ["check", "main"]

log = logging.getLogger("manymodels.serve.smoke")


def _call(url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_ready(base: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before it was ready")
        try:
            status, last = _call(f"{base}/ready", timeout=5)
            if status == 200:
                return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"not ready after {seconds:.0f} s: {last}")


def check(base: str, snapshot: Snapshot, series: int = 3) -> list[str]:
    """Run the checks against a ready server; returns the failures (empty: all passed)."""
    failures = []
    keys = []
    for frame in list(snapshot.parts.values())[:series]:
        row = frame.iloc[0]
        keys.append({"store_id": str(row["store_id"]), "product_id": str(row["product_id"])})
    status, text = _call(f"{base}/v1/forecast", {"series": keys, "weeks": 4})
    if status != 200:
        failures.append(f"POST /v1/forecast: {status} {text[:300]}")
    else:
        for answer in json.loads(text)["forecasts"]:
            weeks = answer["forecasts"]
            if len(weeks) != 4 or any(w["prediction"] < 0 for w in weeks):
                failures.append(f"{answer['partition']}: bad forecasts {weeks}")
            log.info("smoke: %s %s x %s -> %s v%s: %s", answer["partition"], answer["store_id"],
                     answer["product_id"], answer["model"]["name"], answer["model"]["version"],
                     [round(w["prediction"], 2) for w in weeks])  # fmt: skip
    unknown = {"series": [{"store_id": "smoke-test-unknown", "product_id": "none"}]}
    status, _ = _call(f"{base}/v1/forecast", unknown)
    if status != 404:
        failures.append(f"an unknown series answered {status}, not 404")
    status, text = _call(f"{base}/metrics")
    if status != 200 or "manymodels_serve_requests_total" not in text:
        failures.append("GET /metrics lacks manymodels_serve_requests_total")
    return failures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manymodels.serve.smoke", description=__doc__)
    parser.add_argument("--config-dir", default="pipelines")
    parser.add_argument("--env", default="dev", choices=("dev", "prod"))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--series", type=int, default=3)
    parser.add_argument("--ready-timeout", type=float, default=120)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        settings = load_settings(args.config_dir, args.env, args.overrides)
        snapshot = Snapshot(snapshot_path(settings))
    except (ValueError, RuntimeError) as exc:  # ConfigError, SnapshotError
        log.error("smoke: %s", exc)
        return 2
    port = args.port or _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "manymodels.steps.serve", "--config-dir", args.config_dir,
               "--env", args.env, "--host", "127.0.0.1", "--port", str(port),
               *(["--local"] if args.local else [])]  # fmt: skip
    for item in args.overrides:
        command += ["--set", item]
    with tempfile.TemporaryFile("w+") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        log.info("smoke: started the server (pid %d) on %s", server.pid, base)
        try:
            wait_ready(base, server, args.ready_timeout)
            failures = check(base, snapshot, args.series)
        except RuntimeError as exc:
            failures = [str(exc)]
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if failures:
            output.seek(0)
            log.error("smoke: the server's log:\n%s", output.read()[-4000:])
    for failure in failures:
        log.error("smoke: FAILED: %s", failure)
    if not failures:
        log.info("smoke: the online API answered every check (%s)", base)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
