"""Provider accounts: save one with its key encrypted, read the key back.

A key is written once. It is stored as a Fernet token under
PROVIDER_KEYS_SECRET (see settings) with its last four characters for
display; nothing here returns it except provider_key_decrypt, whose only
caller is providers.routing, which puts it in the Authorization header.
Nothing here logs a key or puts it in an exception, and the functions that
hold one hide it from Django's error reports.
"""

from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from jobs.models import ProviderAccount
from jobs.net.fetch import UnsafeUrl, url_check

MAX_KEY_CHARS = 500


class ProviderKeyUnreadable(ImproperlyConfigured):
    """A stored key that the current PROVIDER_KEYS_SECRET cannot decrypt. The
    message names the account, never the key."""

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(
            f"The stored API key of the provider account “{account}” can't be decrypted "
            "with the current PROVIDER_KEYS_SECRET (it changed, or SECRET_KEY changed "
            "while PROVIDER_KEYS_SECRET is unset). Re-enter the key in the admin, under "
            "Provider accounts."
        )
        self.account_id = account.pk


@lru_cache(maxsize=4)
def _fernet_for(secret: str) -> Fernet:
    try:
        return Fernet(secret)
    except ValueError:
        raise ImproperlyConfigured("PROVIDER_KEYS_SECRET must be a Fernet key") from None


def _fernet() -> Fernet:
    return _fernet_for(settings.PROVIDER_KEYS_SECRET)


@sensitive_variables("api_key")
def provider_key_check(api_key: str) -> str:
    """The key as it will be stored, or a ValidationError (on `api_key`)
    that says what is wrong without repeating it."""
    api_key = api_key.strip()
    if not api_key:
        raise ValidationError({"api_key": "Enter the provider's API key."})
    if len(api_key) > MAX_KEY_CHARS:
        raise ValidationError({"api_key": f"A key has at most {MAX_KEY_CHARS} characters."})
    # The same rule as the HTTP client's: it goes into a header as it is.
    if any(ch.isspace() or not ch.isprintable() for ch in api_key):
        raise ValidationError(
            {"api_key": "The key must not contain spaces, line breaks or control characters."}
        )
    return api_key


def provider_base_url_check(base_url: str) -> str:
    """The base URL as it will be stored, or a ValidationError (on `base_url`).

    The studio sends the key to this address and shows members what it
    answers, so it goes through the fetch guard: public addresses only
    (loopback with FETCH_ALLOW_LOOPBACK, for the sandbox)."""
    base_url = base_url.strip().rstrip("/")
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            {"base_url": "Put the key in the key field, not in the URL: no user or password."}
        )
    try:
        url_check(base_url)
    except UnsafeUrl as refused:
        raise ValidationError({"base_url": str(refused)}) from None
    return base_url


def provider_account_conflict(account: ProviderAccount) -> ProviderAccount | None:
    """The other enabled account of the same provider that `account`, enabled,
    would clash with."""
    if not account.enabled:
        return None
    others = ProviderAccount.objects.filter(provider=account.provider, enabled=True)
    if account.pk is not None:
        others = others.exclude(pk=account.pk)
    return others.only("id", "provider", "name").first()


def provider_account_conflict_message(other: ProviderAccount) -> str:
    return (
        f"{other.get_provider_display()} already has an enabled account, "
        f"“{other.name}”. Disable it first, or leave this one disabled."
    )


def _conflict_error(other: ProviderAccount) -> ValidationError:
    return ValidationError({"enabled": provider_account_conflict_message(other)})


@sensitive_variables("api_key")
def provider_account_save(
    *,
    account: ProviderAccount | None = None,
    api_key: str | None,
    by: AbstractBaseUser | None,
    provider: str | None = None,
    name: str | None = None,
    base_url: str | None = None,
    enabled: bool | None = None,
) -> ProviderAccount:
    """Create (account=None) or update an account. Fields left None keep the
    account's value; a blank `api_key` keeps the stored key, and a new
    account needs one. Raises ValidationError, field by field."""
    is_new = account is None or account.pk is None
    account = account if account is not None else ProviderAccount()
    for field, value in (
        ("provider", provider),
        ("name", name),
        ("base_url", base_url),
        ("enabled", enabled),
    ):
        if value is not None:
            setattr(account, field, value)
    account.name = account.name.strip()
    account.base_url = account.base_url.strip().rstrip("/")

    if api_key is not None and api_key.strip():
        api_key = provider_key_check(api_key)
        account.api_key_encrypted = _fernet().encrypt(api_key.encode()).decode()
        account.key_last4 = api_key[-4:]
    elif is_new or not account.api_key_encrypted:
        raise ValidationError({"api_key": "Enter the provider's API key."})

    if is_new:
        account.created_by = by
    account.updated_by = by
    account.full_clean(validate_constraints=False)
    account.base_url = provider_base_url_check(account.base_url)
    if (other := provider_account_conflict(account)) is not None:
        raise _conflict_error(other)
    # Learnt render times belong to where the jobs went (the sandbox's say
    # nothing of the real provider's): restart them if that changes.
    from jobs.pipeline.render_times import render_times_follow_moves

    providers = {account.provider}
    if not is_new:
        providers.update(
            ProviderAccount.objects.filter(pk=account.pk).values_list("provider", flat=True)
        )
    try:
        with transaction.atomic(), render_times_follow_moves(*providers):
            account.save()
    except IntegrityError:
        # Another admin enabled an account of this provider meanwhile.
        other = provider_account_conflict(account)
        if other is None:
            raise
        raise _conflict_error(other) from None
    return account


def provider_key_decrypt(account: ProviderAccount) -> str:
    """The account's key, for the Authorization header and nothing else."""
    try:
        return _fernet().decrypt(account.api_key_encrypted.encode()).decode()
    except InvalidToken:
        raise ProviderKeyUnreadable(account) from None


def provider_key_readable(account: ProviderAccount) -> bool:
    """Whether the current PROVIDER_KEYS_SECRET can decrypt the stored key."""
    try:
        _fernet().decrypt(account.api_key_encrypted.encode())
    except InvalidToken:
        return False
    return True
