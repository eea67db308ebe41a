"""Personal API keys: create, revoke, authenticate.

A key reads `sk_<prefix>_<secret>`. The prefix (8 lowercase letters and
digits) is public: lists show it and authentication finds the row by it. Only
the SHA-256 of the whole key is stored; the key itself exists once, in the
response that creates it. Nothing here logs a key, and the functions that
hold one hide it from Django's error reports.
"""

import hashlib
import hmac
import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from jobs.models import ApiKey, BudgetPeriod

KEY_START = "sk_"
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_LENGTH = 8
SECRET_BYTES = 32  # token_urlsafe(32) gives 43 characters
# Writing last_used_at on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Compared against when no key has the prefix, so a miss costs what a hit does.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


class ApiKeyError(Exception):
    """A refused key operation; the message is safe to show."""


def api_key_display(key: ApiKey) -> str:
    """What a list shows in place of the key: `sk_ab12cd34_…`."""
    return f"{KEY_START}{key.prefix}_…"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_prefix() -> str:
    return "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


@sensitive_variables("raw", "secret")
def api_key_create(*, owner: AbstractBaseUser, name: str) -> tuple[ApiKey, str]:
    """A new active key for `owner`, and the full key to show them once."""
    name = (name or "").strip()
    for _ in range(5):
        prefix = _new_prefix()
        secret = secrets.token_urlsafe(SECRET_BYTES)
        raw = f"{KEY_START}{prefix}_{secret}"
        key = ApiKey(owner=owner, name=name, prefix=prefix, secret_hash=_hash(raw))
        key_defaults_apply(key)
        key.full_clean(exclude=["prefix"])  # the database decides uniqueness
        try:
            with transaction.atomic():
                key.save()
        except IntegrityError:
            continue  # 36^8 prefixes: a collision is rare, two in a row rarer
        return key, raw
    raise ApiKeyError("Could not create a key just now. Please try again.")


def key_defaults_apply(key: ApiKey) -> None:
    """Copy the staff defaults (settings API_KEY_DEFAULT_*) into a new key."""
    days = settings.API_KEY_DEFAULT_EXPIRY_DAYS
    key.expires_at = timezone.now() + timedelta(days=days) if days else None
    key.allowed_modes = list(settings.API_KEY_DEFAULT_MODES)
    key.allowed_providers = list(settings.API_KEY_DEFAULT_PROVIDERS)
    key.budget_credits = settings.API_KEY_DEFAULT_BUDGET or None
    period = settings.API_KEY_DEFAULT_BUDGET_PERIOD
    key.budget_period = period if period in BudgetPeriod.values else BudgetPeriod.MONTH


def api_key_revoke(*, key: ApiKey) -> None:
    """Refuse the key from now on. Revoking a revoked key changes nothing."""
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.refresh_from_db(fields=["revoked_at"])


@sensitive_variables("raw")
def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """The active key `raw` is, or None. Marks it used (at most once a minute)."""
    if not isinstance(raw, str) or not raw.startswith(KEY_START):
        return None
    parts = raw.split("_", 2)
    if len(parts) != 3 or len(parts[1]) != PREFIX_LENGTH or not parts[2]:
        return None
    key = ApiKey.objects.select_related("owner").filter(prefix=parts[1]).first()
    matches = hmac.compare_digest(_hash(raw), key.secret_hash if key else _DUMMY_HASH)
    if key is None or not matches or key.revoked_at is not None or not key.owner.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_RESOLUTION:
        # Conditional, so many requests in the same minute write once.
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


def api_keys_for_owner(*, owner: AbstractBaseUser):
    """A member's keys, active ones first, newest first within each."""
    return ApiKey.objects.filter(owner=owner).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-id"
    )


# --- Limits -----------------------------------------------------------------------

LIMIT_FIELDS = (
    "expires_at",
    "allowed_modes",
    "allowed_providers",
    "budget_credits",
    "budget_period",
    "rate_limit_per_minute",
    "max_in_flight",
)


def _subset_narrows(new: list, old: list) -> bool:
    # An empty list allows everything, so it only narrows an empty list.
    if not old:
        return True
    return bool(new) and set(new) <= set(old)


def key_limits_widened(*, key: ApiKey, limits: dict) -> list[str]:
    """What in `limits` would widen the key's current limits (messages, safe
    to show); empty when every value is the same or narrower."""
    problems = []
    if "expires_at" in limits:
        new = limits["expires_at"]
        if key.expires_at is not None and (new is None or new > key.expires_at):
            problems.append(
                f"The key must expire by {timezone.localtime(key.expires_at):%Y-%m-%d %H:%M}."
            )
    if "allowed_modes" in limits and not _subset_narrows(
        limits["allowed_modes"], key.allowed_modes
    ):
        problems.append("The key may make only " + ", ".join(key.allowed_modes) + ".")
    if "allowed_providers" in limits and not _subset_narrows(
        limits["allowed_providers"], key.allowed_providers
    ):
        problems.append("The key may use only " + ", ".join(key.allowed_providers) + ".")
    if key.budget_credits is not None:
        budget = limits.get("budget_credits", key.budget_credits)
        period = limits.get("budget_period", key.budget_period)
        if budget is None or budget > key.budget_credits:
            problems.append(f"The budget can be at most {key.budget_credits:,} credits.")
        elif period != key.budget_period:
            problems.append(f"The budget stays per {key.budget_period}.")
    for name, default in (
        ("rate_limit_per_minute", settings.API_RATE_LIMIT_PER_MINUTE),
        ("max_in_flight", settings.API_KEY_MAX_IN_FLIGHT),
    ):
        if name not in limits:
            continue
        ceiling = getattr(key, name) or default
        new = limits[name]
        if (new or default) > ceiling or (new is None and getattr(key, name) is not None):
            label = "requests a minute" if name == "rate_limit_per_minute" else "jobs in flight"
            problems.append(f"At most {ceiling:,} {label}.")
    return problems


def api_key_limits_narrow(*, key: ApiKey, limits: dict) -> ApiKey:
    """A member narrows their own key: every value the same or tighter, or
    ApiKeyError saying what would widen (staff set any value in the admin).
    Checked and written under the key's lock, so two tabs cannot together widen."""
    unknown = set(limits) - set(LIMIT_FIELDS)
    if unknown:
        raise ApiKeyError(f"Not a key limit: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is not None:
            raise ApiKeyError("This key is revoked.")
        problems = key_limits_widened(key=locked, limits=limits)
        if problems:
            raise ApiKeyError("Limits can only be narrowed here. " + " ".join(problems))
        for name, value in limits.items():
            setattr(locked, name, value)
        locked.full_clean(exclude=["prefix", "owner"])
        locked.save(update_fields=list(limits))
    return locked
