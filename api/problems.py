"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

A problem has a stable machine-readable ``code`` (``INVALID_PARAMETER``, ``NOT_FOUND``,
``INSUFFICIENT_BALANCE``…) besides the RFC's ``type``, ``title``, ``status`` and ``detail``.
"""

import logging
from typing import Any

import json

from flask import Response
from flask_smorest import Api
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger("ecoledger.api")

_CODES_BY_STATUS = {
    400: "INVALID_PARAMETER",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_BODY",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}


class Problem(Exception):
    """Raise to answer with a problem: ``Problem(400, "INVALID_PARAMETER", "seq must be …")``."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


class ProblemSchema(Schema):
    """An RFC 9457 problem (documentation only)."""

    type = fields.String(metadata={"description": "URI reference naming the problem type"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String(metadata={"description": "stable machine-readable code"})
    errors = fields.Dict(metadata={"description": "field-by-field validation messages"})


def _body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": f"urn:ecoledger:problem:{code.lower().replace('_', '-')}",
            "title": code.replace("_", " ").capitalize(), "status": status,
            "detail": detail, "code": code, **extra}


def problem_body(problem: Problem) -> dict[str, Any]:
    return _body(problem.status, problem.code, problem.detail, **problem.extra)


def problem_response(status: int, code: str, detail: str, **extra: Any) -> Response:
    body = _body(status, code, detail, **extra)
    try:
        text = json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed from the request: escape everything
        text = json.dumps(body, ensure_ascii=True).encode("ascii")
    return Response(text, status=status, mimetype=PROBLEM_MEDIA_TYPE)


class LedgerApi(Api):
    """flask-smorest's Api, answering every error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(Problem, handle_problem)
        self._app.register_error_handler(Exception, handle_unexpected)

    def handle_http_exception(self, error: HTTPException) -> Response:
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        detail = data.get("message") or error.description or error.name
        extra = {"errors": _unwrap_location(errors)} if errors else {}
        if errors and error.code in (400, 422):
            detail = "the request is not valid: " + _first_message(extra["errors"])
        return problem_response(error.code or 500, _CODES_BY_STATUS.get(error.code, "ERROR"),
                                detail, **extra)


def handle_problem(problem: Problem) -> Response:
    return problem_response(problem.status, problem.code, problem.detail, **problem.extra)


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return problem_response(error.code or 500, _CODES_BY_STATUS.get(error.code, "ERROR"),
                                error.description or error.name)
    _log.exception("unexpected error", extra={"error_type": type(error).__name__})
    return problem_response(500, "INTERNAL_ERROR", "the ledger could not answer; nothing was changed")


def _unwrap_location(errors: dict) -> dict:
    """webargs nests messages under the location (``{"query": {...}}``); one level is enough."""
    if isinstance(errors, dict) and len(errors) == 1:
        (location, inner), = errors.items()
        if location in ("query", "json", "path", "headers", "form") and isinstance(inner, dict):
            return inner
    return errors


def _first_message(errors: Any, path: str = "") -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            return _first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(errors, list) and errors:
        return _first_message(errors[0], path)
    return f"{path}: {errors}" if path else str(errors)
