"""Under the API's paths: a body over its limit is refused (413) before any
of it is read, and every error answer is JSON in the contract's shape, even
those Django makes before or after the API's own code (404, 405, 500)."""

import logging

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404

from jobs.studio.upload_limits import request_limit
from jobs.studio.uploads import MB, megabytes_over

from .errors import ApiError, error_response, is_api_path, status_error

log = logging.getLogger("jobs.api")

# What an answer made JSON keeps of the original: which methods (405), the
# size for a range that cannot be served (416).
KEPT_HEADERS = ("Allow", "Content-Range", "Retry-After")
# The most files one API request takes (a dialog's photo and two clips).
API_FILES = 3


def body_limit(request) -> int:
    """Multipart: three files of MAX_UPLOAD_MB plus the form's fields, as the
    Studio's new-job form; anything else (JSON): the fields' room alone."""
    if request.content_type == "multipart/form-data":
        return request_limit(API_FILES)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(declared: int, limit: int) -> ApiError:
    shown = megabytes_over(declared, limit // MB)
    return ApiError(413, f"This request is {shown} MB; at most {limit // MB} MB can be sent here.")


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path_info):
            return self.get_response(request)
        try:
            declared = max(0, int(request.META.get("CONTENT_LENGTH") or 0))
        except ValueError:
            declared = 0
        limit = body_limit(request)
        if declared > limit:
            return error_response(request.path_info, too_large(declared, limit))
        response = self.get_response(request)
        if response.status_code >= 400 and "json" not in response.get("Content-Type", ""):
            # Django's own answers (no route, wrong method, a refused upload).
            answer = error_response(request.path_info, status_error(response.status_code))
            for header in KEPT_HEADERS:
                if header in response:
                    answer[header] = response[header]
            return answer
        return response

    def process_exception(self, request, exception):
        if not is_api_path(request.path_info):
            return None
        if isinstance(exception, RequestDataTooBig):
            limit = body_limit(request)
            return error_response(request.path_info, too_large(limit + 1, limit))
        if isinstance(exception, (Http404, PermissionDenied, BadRequest, SuspiciousOperation)):
            return None  # Django answers these (4xx); __call__ makes that JSON
        log.exception("API request failed: %s %s", request.method, request.path_info)
        return error_response(request.path_info, status_error(500))
