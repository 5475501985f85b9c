"""The FastAPI application: thin routes over :class:`lret_runner.api.service.Service`.

``lret-runner serve`` runs it with uvicorn (OpenAPI docs at ``/docs``). Every route but
``/health`` needs ``Authorization: Bearer <token>`` when the server has a token
(``LRET_API_TOKEN``; compared in constant time). Errors are JSON ``{"message", "field"}``:
422 for a request that cannot run as given (the field and why), 404 for an unknown run or
session, 401 without the token, 500 (with the message) only for a bug.
"""

from __future__ import annotations

import hmac
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from lret_runner import __version__
from lret_runner.api.models import (
    Batch,
    BatchRequest,
    BatchSubmitted,
    ErrorBody,
    Experiment,
    ExperimentList,
    ExperimentRequest,
    Health,
    Index,
    MetricInfo,
    QueryAnswer,
    QueryRequest,
    Submitted,
)
from lret_runner.api.service import STATUSES, RequestError, Service, Settings
from lret_runner.errors import SessionError, TrackingError, UserError

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a request the store refuses"},
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "no such run, batch, session or artifact"},
    422: {"model": ErrorBody, "description": "the request cannot run as given"},
}


def create_app(settings: Settings) -> FastAPI:
    """The application for ``settings`` (its service starts with the server)."""
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        token = settings.token
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        # an auth scheme is case-insensitive (RFC 9110): bearer, Bearer, BEARER
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise _Unauthorized()

    app = FastAPI(
        title="lret_runner",
        version=__version__,
        description="Run noisy quantum-circuit experiments and read their MLflow records.",
        lifespan=lifespan,
    )
    app.state.service = service
    guarded = [Depends(authorized)]

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse({"message": "missing or wrong bearer token"}, status_code=401)

    @app.exception_handler(RequestError)
    async def invalid(request: Request, exc: RequestError) -> JSONResponse:
        message = service.scrub(str(exc))
        return JSONResponse({"message": message, "field": exc.field}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
        return JSONResponse({"message": message, "field": field}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # a path no route matches, a method a route does not take: the same JSON errors
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of every route on the path, not one route's
            path = request.url.path
            methods = {
                m
                for r in app.routes
                if (regex := getattr(r, "path_regex", None)) and regex.match(path)
                for m in getattr(r, "methods", ()) or ()
            }
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"message": str(exc.detail)}, exc.status_code, headers=headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        missing = isinstance(exc, SessionError | TrackingError) and "does not exist" in str(exc)
        message = service.scrub(str(exc))
        return JSONResponse({"message": message}, status_code=404 if missing else 400)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        message = service.scrub(f"internal error: {type(exc).__name__}: {exc}")
        return JSONResponse({"message": message}, 500)

    @app.get("/", response_model=Index, dependencies=guarded, responses=ERRORS)
    def index() -> dict[str, Any]:
        routes = sorted({f"{m} {r.path}" for r in app.routes for m in getattr(r, "methods", ())})
        return {"name": "lret_runner", "version": __version__, "docs": "/docs", "endpoints": routes}

    @app.get("/metrics", response_model=list[MetricInfo], dependencies=guarded, responses=ERRORS)
    def metric_registry() -> list[dict[str, Any]]:
        """Every figure a run reports: its label, unit, what it is measured against."""
        from lret_runner.tracking.vocabulary import METRICS

        fields = MetricInfo.model_fields
        return [{k: getattr(m, k) for k in fields} for m in METRICS]

    @app.get("/health", response_model=Health)
    def health() -> dict[str, Any]:
        return service.health()

    @app.post(
        "/experiments",
        status_code=202,
        response_model=Submitted,
        dependencies=guarded,
        responses=ERRORS,
    )
    def submit(request: ExperimentRequest) -> dict[str, Any]:
        run_id = service.submit(request)
        return {"run_id": run_id, "status": "pending", "session": request.session}

    @app.get(
        "/experiments/{run_id}", response_model=Experiment, dependencies=guarded, responses=ERRORS
    )
    def get(run_id: str) -> dict[str, Any]:
        return service.get(run_id)

    @app.get("/experiments", response_model=ExperimentList, dependencies=guarded, responses=ERRORS)
    def listing(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None,
        session: str | None = None,
        tag: Annotated[list[str], Query(description="KEY=VALUE, repeatable")] = [],  # noqa: B006
    ) -> dict[str, Any]:
        tags = {}
        for pair in tag:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise RequestError(f"tag={pair!r} is invalid: use KEY=VALUE", "tag")
            tags[key] = value
        total, items = service.list(limit, status, session, tags)
        return {"total": total, "items": items}

    @app.post(
        "/batches",
        status_code=202,
        response_model=BatchSubmitted,
        dependencies=guarded,
        responses=ERRORS,
    )
    def submit_batch(request: BatchRequest) -> dict[str, Any]:
        return service.submit_batch(request)

    @app.get("/batches/{batch_id}", response_model=Batch, dependencies=guarded, responses=ERRORS)
    def batch(batch_id: str) -> dict[str, Any]:
        return service.batch(batch_id)

    @app.delete("/batches/{batch_id}", response_model=Batch, dependencies=guarded, responses=ERRORS)
    def cancel_batch(batch_id: str) -> dict[str, Any]:
        return service.cancel_batch(batch_id)

    @app.post("/query", response_model=QueryAnswer, dependencies=guarded, responses=ERRORS)
    def query(request: QueryRequest) -> Any:
        from lret_runner.api.nl import parse

        parsed = parse(request.text)
        answer = {k: v for k, v in parsed.to_dict().items() if k in QueryAnswer.model_fields}
        if not parsed.ok:
            message = "could not map the request: missing " + "; ".join(parsed.missing)
            return JSONResponse({"message": message, "field": "text", **answer}, 422)
        if not request.dry_run:
            answer["submitted"] = service.submit_query(parsed, request.session)
        return answer

    # the read side: the queries `lret-runner` uses, as JSON
    @app.get(
        "/sessions", response_model=list[dict[str, Any]], dependencies=guarded, responses=ERRORS
    )
    def sessions(include_all: bool = False) -> list[dict[str, Any]]:
        return [s.to_dict() for s in service.queries.session_summaries(include_all)]

    @app.get(
        "/sessions/{name}", response_model=dict[str, Any], dependencies=guarded, responses=ERRORS
    )
    def session(name: str, limit: Annotated[int, Query(ge=0, le=1000)] = 10) -> dict[str, Any]:
        return service.queries.session_summary(name, limit).to_dict()

    @app.get(
        "/experiments/{run_id}/lineage",
        response_model=dict[str, Any],
        dependencies=guarded,
        responses=ERRORS,
    )
    def lineage(run_id: str) -> dict[str, Any]:
        return service.queries.lineage(_run_id(run_id)).to_dict()

    @app.get("/compare", response_model=dict[str, Any], dependencies=guarded, responses=ERRORS)
    def compare(
        ids: Annotated[str, Query(description="run ids, comma-separated")],
    ) -> dict[str, Any]:
        refs = [_run_id(i) for i in ids.split(",") if i.strip()]
        if len(refs) < 2:
            raise RequestError("ids: give at least two run ids, comma-separated", "ids")
        return service.queries.compare(refs).to_dict()

    @app.get(
        "/experiments/{run_id}/artifacts/{path:path}",
        dependencies=guarded,
        responses={**ERRORS, 200: {"description": "the file", "content": {"*/*": {}}}},
        response_class=FileResponse,
    )
    def artifact(run_id: str, path: str) -> FileResponse:
        local, folder = service.artifact(_run_id(run_id), path)
        return FileResponse(local, background=BackgroundTask(shutil.rmtree, folder, True))

    return app


def _run_id(text: str) -> str:
    """A full run id (32 hex digits): anything else is an unknown run (404)."""
    if not re.fullmatch(r"[0-9a-f]{32}", text.strip()):
        raise TrackingError(f"run {text!r} does not exist")
    return text.strip()


class _Unauthorized(Exception):
    """A request without the server's bearer token."""
