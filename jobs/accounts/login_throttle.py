"""Login throttling, on django-axes (settings: LOGIN_* and TRUSTED_PROXY_COUNT).

Wrong passwords count per account from one address (LOGIN_FAILURE_LIMIT) and
per address whatever the account (LOGIN_ADDRESS_FAILURE_LIMIT, larger, so one
member's typos do not lock out a whole office behind one address). Reaching
either pauses sign-ins there until LOGIN_COOLOFF_MINUTES after the failures
that reached it; attempts during the pause do not extend it, so nobody can be
kept out for good, and an attacker elsewhere cannot lock a member out at all.
Staff end a pause early by deleting its access attempt in the admin.
"""

import ipaddress
import math
from datetime import datetime

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone


def client_address(request: HttpRequest) -> str | None:
    """Where a sign-in comes from (axes' AXES_CLIENT_IP_CALLABLE).

    The connection's address; behind TRUSTED_PROXY_COUNT reverse proxies, each
    appending the address it saw to X-Forwarded-For, the entry the outermost
    of them added: entries further left are whatever the client wrote.
    """
    address = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        chain = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        chain = [h for h in chain if h]
        if len(chain) >= hops:
            address = chain[-hops]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return request.META.get("REMOTE_ADDR")


class LoginThrottle(AxesDatabaseHandler):
    """Axes' database handler, with a limit for each lockout parameter.

    Axes compares one failure count, the largest over AXES_LOCKOUT_PARAMETERS,
    with one limit (AXES_FAILURE_LIMIT). Here the parameters are (account and
    address, address), in that order, each with its own limit; the count given
    to axes is scaled so it reaches AXES_FAILURE_LIMIT exactly when one of them
    reaches its own limit.
    """

    def _limits(self) -> tuple[int, int]:
        return settings.AXES_FAILURE_LIMIT, settings.LOGIN_ADDRESS_FAILURE_LIMIT

    def get_failures(self, request, credentials: dict | None = None) -> int:
        limit = settings.AXES_FAILURE_LIMIT
        counts = [
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        ]
        return max(count * limit // own for count, own in zip(counts, self._limits(), strict=True))

    def lockout_ends(self, request, credentials: dict | None = None) -> datetime | None:
        """When the pause on this account and address ends, if there is one."""
        cool_off = get_cool_off(request)
        ends = []
        for attempts, limit in zip(
            self.get_user_attempts(request, credentials), self._limits(), strict=True
        ):
            # The pause lasts while the attempts within the cool-off add up to the
            # limit: until the newest ones that do so are a cool-off old.
            total = 0
            for failures, at in attempts.order_by("-attempt_time").values_list(
                "failures_since_start", "attempt_time"
            ):
                total += failures
                if total >= limit:
                    ends.append(at + cool_off)
                    break
        return max(ends, default=None)


def lockout_minutes_left(request: HttpRequest, credentials: dict | None = None) -> int:
    """Whole minutes until this sign-in may be tried again (at least 1)."""
    ends = LoginThrottle().lockout_ends(request, credentials)
    if ends is None:
        return settings.LOGIN_COOLOFF_MINUTES
    return max(1, math.ceil((ends - timezone.now()).total_seconds() / 60))
