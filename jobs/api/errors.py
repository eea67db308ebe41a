"""The API's one error shape, `{"error": {"code", "message", "field"?}}`,
and JoyPix's envelope for its routes, `{"code", "message", "data": null}`."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

# HTTP status -> the code an error of that status carries unless it says otherwise.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "insufficient_credits",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_request",
    429: "rate_limited",
    500: "server_error",
}
MESSAGES = {
    400: "The request could not be read.",
    401: "A valid API key is required: send `Authorization: Bearer sk_...`.",
    404: "Nothing is here.",
    405: "This address does not take that method.",
    413: "The request is too large.",
    416: "This range is not in the file.",
    500: "Something went wrong on the studio's side; nothing was kept. Try again.",
}
# Paths the API answers, whose errors are always JSON.
LIPSYNC_PREFIX = "/api/v1/"
JOYPIX_PREFIX = "/v1/"


class ApiError(Exception):
    """An answer other than success; `field` names the input at fault, and
    `extra` adds keys to the error (402's needed and available)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.field = field
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        error.update(self.extra)
        return {"error": error}

    def joypix_body(self) -> dict:
        message = f"{self.field}: {self.message}" if self.field else self.message
        return {"code": self.status, "message": message, "data": None}


def is_joypix_path(path: str) -> bool:
    return path.startswith(JOYPIX_PREFIX)


def is_api_path(path: str) -> bool:
    return path.startswith(LIPSYNC_PREFIX) or path.startswith(JOYPIX_PREFIX)


def error_response(path: str, error: ApiError) -> JsonResponse:
    """The error as the contract of `path` shapes it."""
    body = error.joypix_body() if is_joypix_path(path) else error.body()
    response = JsonResponse(body, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def status_error(status: int, message: str = "") -> ApiError:
    return ApiError(status, message or MESSAGES.get(status, "The request was refused."))
