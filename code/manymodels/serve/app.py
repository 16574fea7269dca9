"""The FastAPI app: ``POST /v1/forecast``, ``GET /health``, ``/ready``, ``/metrics``; OpenAPI at
``/docs``. :func:`create_app` wires a :class:`~manymodels.serve.service.Service` to HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from manymodels.serve.metrics import LATENCY_BUCKETS
from manymodels.serve.schemas import ForecastRequest, ForecastResponse
from manymodels.serve.service import NeedsWork, ServeError, Service

__all__ = ["create_app", "in_background"]


class BodyLimit:
    """ASGI middleware: 413 for a body above ``limit`` bytes, declared or streamed (a body
    without Content-Length is read up to the limit, then handed on)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.limit:
                return await _too_large(self.limit, send)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await _too_large(self.limit, send)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        return await self.app(scope, replay, send)


class Measure:
    """ASGI middleware: count requests by route and status, and time them."""

    def __init__(self, app, metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.inc("requests_total", route=route, status=str(status[0]))
            self.metrics.observe("request_seconds", time.perf_counter() - start, route=route)


async def _too_large(limit: int, send) -> None:
    body = f'{{"detail":"request body over {limit} bytes (serving.max_body_kb)"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def create_app(service: Service) -> FastAPI:
    """The HTTP face of ``service``."""
    app = FastAPI(
        title="manymodels forecasts",
        version="1",
        description="Weekly demand forecasts per store x product from each partition's model, "
        "resolved by alias in the MLflow registry and loaded on demand. See docs/serving.md.",
    )
    metrics = service.metrics
    metrics.describe("requests_total", "counter", "HTTP requests by route and status.")
    metrics.describe(
        "request_seconds", "histogram", "Request latency by route.", buckets=LATENCY_BUCKETS
    )
    metrics.describe(
        "series_forecast_total",
        "counter",
        "Series forecast, by what answered: model, baseline_champion (the gate kept the baseline), "
        "new_series_baseline (a series too young for the model), new_series_no_baseline.",
    )
    metrics.describe(
        "stale_series_forecast_total", "counter", "Series answered by a stale cached model."
    )
    app.state.service = service

    app.add_middleware(BodyLimit, limit=service.settings.max_body_kb * 1024)
    app.add_middleware(Measure, metrics=metrics)

    @app.exception_handler(ServeError)
    async def serve_error(_: Request, exc: ServeError):
        return JSONResponse({"detail": exc.detail}, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_payload(_: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, 422)

    @app.post("/v1/forecast", response_model=ForecastResponse)
    async def forecast(body: ForecastRequest) -> ForecastResponse:
        """Point forecasts (and intervals when the model has them) for a batch of series."""
        try:  # answered from memory on the event loop: no thread hop for a warm request
            return service.forecast(body, cached_only=True)
        except NeedsWork:  # a load, a registry call or a model run: in a worker thread
            return await run_in_threadpool(service.forecast, body)

    @app.get("/health")
    def health() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        """Ready when the registry answers and a feature snapshot is loaded (else 503)."""
        service.refresh_snapshot()
        problems = service.ready()
        snapshot = service.snapshot
        body = {
            "status": "not ready" if problems else "ready",
            "problems": problems,
            "snapshot": str(service.snapshot_path),
            "series": snapshot.series_count if snapshot else 0,
            "models_loaded": len(service.cache.entries()),
        }
        return JSONResponse(body, 503 if problems else 200)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        """Prometheus text format."""
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app


@contextlib.contextmanager
def in_background(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread of this process (tests, notebooks); yields its URL.

    ``port=0`` picks a free one. The server stops when the block ends.
    """
    import uvicorn  # noqa: PLC0415

    if not port:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
