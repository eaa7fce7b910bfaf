"""The tenant's ASGI application: FastAPI for the API, a bare handler for IT Glue's webhook."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from qp_common.wire import error_body
from qp_tenant import __version__
from qp_tenant.api import accounts as account_routes
from qp_tenant.api import agents as agent_routes
from qp_tenant.api import alerts as alert_routes
from qp_tenant.api import auth as auth_routes
from qp_tenant.api import customers as customer_routes
from qp_tenant.api import events as event_routes
from qp_tenant.api import integration as integration_routes
from qp_tenant.api import microsoft365 as microsoft365_routes
from qp_tenant.api.body_limit import BodySizeLimit
from qp_tenant.api.hooks import HOOK_PREFIX, baseline_202, handle_hook
from qp_tenant.api.responses import Health, answers, install_openapi
from qp_tenant.config import Settings
from qp_tenant.crypto import Crypto, load_or_create_master_key, load_previous_keys
from qp_tenant.db import (
    WriteGate,
    create_engine,
    create_sqlite_writer,
    migrate,
    session_factory,
)
from qp_tenant.domain.auth import TokenPolicy
from qp_tenant.domain.events import EventBroker
from qp_tenant.domain.mailer import Mailer, SmtpConfig
from qp_tenant.domain.microsoft365 import CloudResets, Microsoft365
from qp_tenant.domain.notify import EventListener
from qp_tenant.domain.pipeline import ResetPipeline
from qp_tenant.domain.scheduler import AlertScheduler
from qp_tenant.domain.stream import EventTails
from qp_tenant.domain.throttle import LoginThrottle
from qp_tenant.domain.watcher import ITGlueWatcher
from qp_tenant.domain.webhook import TriggerIngest
from qp_tenant.errors import ApiError
from qp_tenant.state import AppState

log = logging.getLogger(__name__)

BASELINE_PATH = "/__bench/baseline"
# The most one step of the lifespan shutdown may take (see _stop_within).
SHUTDOWN_STEP_SECONDS = 3.0


def build_state(settings: Settings) -> AppState:
    engine = create_engine(settings)
    sessions = session_factory(engine)
    crypto = Crypto(load_or_create_master_key(settings.secret_key, settings.data_dir),
                    load_previous_keys(settings.secret_key, settings.previous_secret_keys,
                                       settings.data_dir))
    if crypto.previous_key_count:
        log.info("Secret key rotation: %d previous key(s) accepted for reading; after "
                 "`qp-tenant rotate-key` they can be removed", crypto.previous_key_count)
    broker = EventBroker()
    public_url = settings.public_url or f"http://{settings.host}:{settings.port}"
    alerts = AlertScheduler(sessions, broker, settings, Mailer(SmtpConfig.from_settings(settings)),
                            public_url=public_url)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0),
                             headers={"User-Agent": f"qp-tenant/{__version__}"})
    write_gate = WriteGate(enabled=settings.is_sqlite)
    pipeline = ResetPipeline(sessions, crypto, broker, http, settings, write_gate=write_gate)

    def on_committed(tenants: set[int]) -> None:
        pipeline.wake(tenants)

    ingest = TriggerIngest(
        engine, crypto, broker,
        duplicate_window_seconds=settings.duplicate_window_seconds,
        rate_limit_per_minute=settings.webhook_rate_limit_per_minute,
        refusal_limit_per_minute=settings.webhook_refusal_limit_per_minute,
        max_batch=settings.webhook_max_batch,
        on_committed=on_committed, on_refused=alerts.wake, after_insert=pipeline.record_triggers,
        after_repeat=pipeline.record_repeats,
        write_gate=write_gate, sqlite_writer=create_sqlite_writer(settings),
    )
    pipeline.defer_while = ingest.busy
    m365 = Microsoft365(settings)
    pipeline.cloud = CloudResets(m365)
    # Changes it finds take the webhook's path into the pipeline (record_triggers), and its
    # IT Glue requests count against the same per-key limiter as the pipeline's.
    watcher = ITGlueWatcher(sessions, crypto, broker, http, settings,
                            record_triggers=pipeline.record_triggers, wake_pipeline=pipeline.wake,
                            limiter=pipeline.limiter, write_gate=write_gate,
                            public_url=public_url)
    return AppState(
        settings=settings, engine=engine, sessions=sessions, crypto=crypto, broker=broker,
        ingest=ingest,
        throttle=LoginThrottle(settings.login_max_failures, settings.login_window_seconds,
                               settings.login_email_max_failures,
                               settings.login_email_delay_seconds,
                               settings.login_known_address_days),
        token_policy=TokenPolicy(settings.access_token_ttl_seconds,
                                 settings.refresh_token_ttl_days),
        http=http, public_url=public_url, alerts=alerts, pipeline=pipeline,
        tails=EventTails(engine, broker, poll_seconds=settings.stream_poll_seconds,
                         streams_per_user=settings.streams_per_user),
        m365=m365, watcher=watcher,
    )


async def _stop_within(what: str, stopping: Coroutine[Any, Any, Any],
                       seconds: float = SHUTDOWN_STEP_SECONDS) -> None:
    """Await one shutdown step, but no longer than ``seconds`` (then log it and move on)."""
    log.info("Shutdown: stopping %s", what)
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("Shutdown: %s did not stop within %.0f s; leaving it behind (what it was "
                    "doing is durable and resumes on the next start)", what, seconds)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("Shutdown: stopping %s failed: %s", what, task.exception())


def create_api(state: AppState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await migrate(state.engine)
        listener: EventListener | None = None
        if not state.settings.is_sqlite:
            # Several processes may share this database: wake our subscribers on their commits.
            listener = EventListener(state.settings.effective_database_url, state.broker)
            listener.start()
            if state.pipeline is not None:
                # Webhook bursts on any process (not only this one) make resolving wait.
                ingest_busy, other_busy = state.ingest.busy, listener.webhooks_arriving
                state.pipeline.defer_while = lambda: ingest_busy() or other_busy()
            if not await listener.wait_connected(10):
                log.warning("Started without LISTEN; streams fall back to polling meanwhile")
        state.ingest.start()
        if state.alerts is not None:
            state.alerts.start()
        if state.pipeline is not None:
            state.pipeline.start()
        if state.watcher is not None:
            state.watcher.start()
        try:
            yield
        finally:
            state.shutting_down = True
            # Webhooks first: whatever is queued is committed and answered (the durable part).
            log.info("Shutdown: draining the webhook queue")
            await state.ingest.stop()
            await state.tails.close()  # ends any stream still open, with a retry hint
            # Background work is durable (leases lapse and are retried, the mail outbox is a
            # table), so a part that does not stop in time is left behind, not waited for.
            if state.alerts is not None:
                await _stop_within("the alert scheduler", state.alerts.stop())
            if state.watcher is not None:
                await _stop_within("the IT Glue watcher", state.watcher.stop())
            if state.pipeline is not None:
                await _stop_within("the reset pipeline", state.pipeline.stop())
            if listener is not None:
                await _stop_within("the event listener", listener.stop())
            log.info("Shutdown: closing the database")
            await _stop_within("the HTTP client", state.http.aclose())
            if state.m365 is not None:
                await _stop_within("the Microsoft 365 client", state.m365.aclose())
            await _stop_within("the database pool", state.engine.dispose())

    api = FastAPI(title="QP tenant", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    api.state.qp = state

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        if any(err.get("type") == "json_invalid" for err in exc.errors()):
            return JSONResponse({"error": {"code": "invalid_json",
                                           "message": "The body is not valid JSON.",
                                           "details": {}}}, status_code=400)
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
             "problem": err.get("msg", "")}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "problem": "invalid"}
        message = f"{first['field'] or 'The request'}: {first['problem']}"
        return JSONResponse(
            error_body("invalid_request", message, {"problems": problems}),
            status_code=422,
        )

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 400 and message == "There was an error parsing the body":
            code, message = "invalid_json", "The body is not valid JSON."
        if exc.status_code == 405:
            # Starlette names only the first route of the path; list every method it has.
            headers["Allow"] = ", ".join(allowed_methods(api, request.url.path)
                                         or [headers.get("Allow", "")])
        return JSONResponse(
            error_body(code, message),
            status_code=exc.status_code, headers=headers or None,
        )

    @api.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("Unexpected error")
        return JSONResponse(
            error_body("internal_error",
                       "Something went wrong on the tenant. The error was logged."),
            status_code=500,
        )

    @api.get("/healthz", response_model=None, responses=answers(Health))
    async def healthz() -> dict[str, Any]:
        try:
            async with state.sessions() as session:
                await session.execute(text("SELECT 1"))
            db = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            log.warning("Health check: database unavailable: %s", exc)
            db = "unavailable"
        return {"status": "ok" if db == "ok" else "degraded", "db": db, "version": __version__}

    api.include_router(auth_routes.router)
    api.include_router(integration_routes.router)
    api.include_router(event_routes.router)
    api.include_router(alert_routes.router)
    api.include_router(customer_routes.router)
    api.include_router(account_routes.router)
    api.include_router(agent_routes.router)
    api.include_router(agent_routes.agent_router)
    api.include_router(microsoft365_routes.router)
    api.include_router(microsoft365_routes.status_router)
    install_openapi(api)
    return api


def allowed_methods(api: FastAPI, path: str) -> list[str]:
    """Every method the OpenAPI document lists for ``path``."""
    methods: set[str] = set()
    for pattern, operations in _path_patterns(api):
        if pattern.fullmatch(path):
            methods |= operations
    return sorted(methods)


def _path_patterns(api: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    cached: list[tuple[re.Pattern[str], set[str]]] | None = getattr(api, "_qp_path_patterns",
                                                                   None)
    if cached is not None:
        return cached
    cached = []
    for template, operations in api.openapi()["paths"].items():
        integer_params = {p["name"] for op in operations.values()
                          for p in op.get("parameters", ())
                          if p.get("in") == "path" and p.get("schema", {}).get("type") == "integer"}
        parts = re.split(r"\{(\w+)\}", template)
        regex = "".join(re.escape(part) if i % 2 == 0
                        else ("[0-9]+" if part in integer_params else "[^/]+")
                        for i, part in enumerate(parts))
        cached.append((re.compile(regex), {m.upper() for m in operations}))
    api._qp_path_patterns = cached  # type: ignore[attr-defined]
    return cached


class TenantApp:
    """The ASGI entry: webhook paths go to the bare handler, everything else to FastAPI
    behind a 1 MiB cap on request bodies (api/body_limit.py)."""

    def __init__(self, state: AppState, baseline: bool = False):
        self.state = state
        self.api = create_api(state)
        self.limited_api = BodySizeLimit(self.api)
        self.baseline = baseline

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith(HOOK_PREFIX):
                await handle_hook(scope, receive, send, self.state.ingest)
                return
            if self.baseline and path == BASELINE_PATH:
                await baseline_202(scope, receive, send)
                return
            await self.limited_api(scope, receive, send)
            return
        await self.api(scope, receive, send)


def create_app(settings: Settings | None = None) -> TenantApp:
    settings = settings or Settings()
    return TenantApp(build_state(settings), baseline=os.environ.get("QP_BENCH_BASELINE") == "1")
