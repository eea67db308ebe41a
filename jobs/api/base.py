"""What both contracts' APIs share: the NinjaAPI with the studio's key auth
and error shapes, and reading a body that comes as JSON or as multipart."""

from __future__ import annotations

import json
import logging
from functools import wraps

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, JsonResponse
from django.utils.csp import CSP
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .auth import ApiKeyAuth
from .errors import ApiError, error_response, status_error
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import KEEP_FOR, MAX_KEY
from .middleware import API_FILES

log = logging.getLogger("jobs.api")

# Every POST takes one (jobs/api/idempotency.py); declared so clients and
# the docs see it.
IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Any unique string: a retry with the same key and body within "
    f"{KEEP_FOR.total_seconds() / 3600:g} h gets the first answer and makes nothing; the "
    "same key with another body gets 422.",
    "schema": {"type": "string", "maxLength": MAX_KEY},
}
# Stands for an uploaded file while the rest of a multipart body is validated.
UPLOADED = "uploaded-file"


class ContractApi(NinjaAPI):
    """A NinjaAPI whose errors are the studio's JSON and whose request
    bodies (read by hand: JSON or multipart) are documented from schemas."""

    def __init__(self, *, body_schemas: tuple[type[BaseModel], ...] = (), **kwargs):
        super().__init__(auth=ApiKeyAuth(), docs_decorator=docs_policy, **kwargs)
        self.body_schemas = body_schemas
        self.add_exception_handler(ApiError, _api_error)
        self.add_exception_handler(AuthenticationError, _unauthorized)
        self.add_exception_handler(NinjaValidationError, _invalid)
        self.add_exception_handler(HttpError, _http_error)
        self.add_exception_handler(Http404, _not_found)
        self.add_exception_handler(Exception, _server_error)

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in self.body_schemas:
            doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(doc.pop("$defs", {}))
            components[model.__name__] = doc
        for operations in schema.get("paths", {}).values():
            if "post" in operations:
                operations["post"].setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        return schema


def docs_policy(view):
    """The interactive docs (ninja's bundled Swagger UI) under the studio's
    policy, with one addition: its stylesheet draws a few icons (a select's
    arrow, the copy button) as data: SVG images, which cannot run script."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        policy = dict(settings.SECURE_CSP)
        policy["img-src"] = [*policy.get("img-src", [CSP.SELF]), "data:"]
        response._csp_config = policy  # what django.views.decorators.csp sets
        return response

    return wrapped


def body_doc(model: type[BaseModel], *, multipart: bool = True) -> dict:
    """openapi_extra for an operation whose body is `model`, as JSON or
    (with each file field a file or a URL) as multipart/form-data."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    content = {"application/json": {"schema": ref}}
    if multipart:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "description": "The same fields, flat (formState's too, e.g. `image`, or "
                "`formState[image]`); each file field a file or a URL.",
            }
        }
    return {"requestBody": {"required": True, "content": content}}


def _api_error(request, exc: ApiError):
    return error_response(request.path_info, exc)


def _unauthorized(request, exc):
    return error_response(request.path_info, status_error(401))


def _invalid(request, exc: NinjaValidationError):
    first = exc.errors[0] if exc.errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
    error = ApiError(422, first.get("msg", "Invalid request."), field=".".join(loc) or None)
    return error_response(request.path_info, error)


def _http_error(request, exc: HttpError):
    return error_response(request.path_info, ApiError(exc.status_code, str(exc)))


def _not_found(request, exc):
    return error_response(request.path_info, status_error(404))


def _server_error(request, exc):
    log.exception("API request failed: %s %s", request.method, request.path_info)
    return error_response(request.path_info, status_error(500))


def read_body(request, schema: type[BaseModel], *, form_key: str | None = None):
    """The validated body and its uploaded files ({field: file}). JSON as the
    contracts send it, or multipart with the same fields flat (formState's
    under `form_key` when the contract nests them). ApiError names the field."""
    files: dict[str, UploadedFile] = {}
    if request.content_type == "multipart/form-data":
        data: dict = {}
        form: dict = {}
        top = set(schema.model_fields) - {form_key}  # the fields outside formState
        if len(request.FILES) > API_FILES:
            raise ApiError(422, f"At most {API_FILES} files can be sent.")
        for name in request.POST:
            _place(data, form, name, request.POST.get(name), form_key, top)
        for name in request.FILES:
            short = _place(data, form, name, UPLOADED, form_key, top)
            files[short] = request.FILES[name]
        if form_key:
            data[form_key] = form
    elif request.content_type in ("application/json", "") or request.content_type.endswith("+json"):
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(422, "The body must be a JSON object.")
    else:
        raise ApiError(415, "Send application/json or multipart/form-data.")
    try:
        body = schema.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"]
        if first["type"] == "missing":
            message = "This field is required."
        raise ApiError(422, message, field=field) from None
    return body, files


def _place(data: dict, form: dict, name: str, value, form_key: str | None, top: set[str]) -> str:
    """Put a multipart field where the JSON body would have it; its short name."""
    if form_key:
        for start in (f"{form_key}[", f"{form_key}."):
            if name.startswith(start):
                short = name[len(start) :].rstrip("]")
                form[short] = value
                return short
        if name not in top:
            form[name] = value
            return name
    data[name] = value
    return name


def json_answer(status: int, body: dict) -> JsonResponse:
    return JsonResponse(body, status=status)
