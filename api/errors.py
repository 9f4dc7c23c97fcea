"""Every error leaves the API as JSON in OpenAI's shape, `{"error": {"message", "type", "code"}}`,
so one client-side handler serves our API and OpenAI's alike."""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.audio.validation import AudioRejected
from pipelines.storage.turns import NotFound

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def error_body(message: str, *, code: str, type_: str = "invalid_request_error", **extra: Any) -> dict:
    return {"error": {"message": message, "type": type_, "code": code, **extra}}


def _json(status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra: Any):
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse(error_body(message, code=code, type_=type_, **extra), status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(AudioRejected)
    async def _audio(_: Request, exc: AudioRejected) -> JSONResponse:
        return _json(exc.status, str(exc), exc.code, param="file")

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _json(404, f"not found: {exc}", "not_found")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return _json(422, problems or "invalid request", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return _json(exc.status_code, str(exc.detail), code.get(exc.status_code, "http_error"), exc.headers)

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    @app.exception_handler(kombu.exceptions.OperationalError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("broker unavailable: %s", exc)
        return _json(
            503, "the broker is unavailable; try again shortly", "broker_unavailable", {"Retry-After": "5"}
        )

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return _json(
            503,
            "the database is unavailable; try again shortly",
            "database_unavailable",
            {"Retry-After": "5"},
        )
