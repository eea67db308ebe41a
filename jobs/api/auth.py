"""Who is calling: `Authorization: Bearer sk_...` checked by
jobs.accounts.api_keys (hashed at rest, compared in constant time, last use
written at most once a minute), then the key's rate limit. A missing,
malformed, unknown or revoked key all get the same 401, so keys cannot be
probed; an expired key's 401 says it expired (only its holder can send it)."""

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from ninja.security import HttpBearer

from jobs.accounts.api_keys import api_key_authenticate
from jobs.models import ApiKey

from .errors import ApiError

WINDOW = 60  # seconds


class ApiKeyAuth(HttpBearer):
    """Answers the ApiKey (request.auth) or None (401)."""

    @sensitive_variables("header", "token")
    def __call__(self, request):
        # ninja's own reading logs an unexpected header whole under DEBUG;
        # a key sent with the wrong scheme must not reach the log.
        header = request.headers.get(self.header, "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.openapi_scheme or not token:
            return None
        return self.authenticate(request, token)

    @sensitive_variables("token")
    def authenticate(self, request, token: str) -> ApiKey | None:
        key = api_key_authenticate(raw=token.strip())
        if key is not None:
            expiry_check(key=key)
            rate_limit_check(key=key)
        return key


def expiry_check(*, key: ApiKey) -> None:
    """ApiError 401 for a key past its expiry date."""
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise ApiError(
            401,
            f"This API key expired on {key.expires_at.isoformat()}; "
            "make a new one on the keys page.",
            code="key_expired",
        )


def key_rate_limit(key: ApiKey) -> int:
    return key.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE


def rate_limit_check(*, key: ApiKey, now: float | None = None) -> None:
    """Count one request against the key's minute; ApiError 429 (with
    Retry-After) past the key's requests a minute (API_RATE_LIMIT_PER_MINUTE
    when it names none). A fixed window in Django's
    cache: Redis when configured, so every web node counts together."""
    now = time.time() if now is None else now
    window = int(now // WINDOW)
    name = f"api-rate:{key.prefix}:{window}"
    cache.add(name, 0, timeout=WINDOW * 2)
    try:
        count = cache.incr(name)
    except ValueError:  # evicted between add and incr: count this one afresh
        cache.set(name, 1, timeout=WINDOW * 2)
        count = 1
    limit = key_rate_limit(key)
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * WINDOW - now))
        raise ApiError(
            429,
            f"This key sent more than {limit} requests this minute; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
