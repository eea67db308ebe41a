"""Where each provider is reached: its enabled account from the admin, else a
real account from the environment, else the sandbox; and an adapter built for
that endpoint. Keys never leave the Endpoint except in the Authorization header
(the repr hides them).

The Django-aware side of jobs.providers, with accounts.py: it reads settings
and ProviderAccount (jobs.models); the adapters it builds import no Django.
"""

import time
from dataclasses import dataclass, field

import requests
from django.conf import settings

from jobs.models import ProviderAccount

from .accounts import provider_key_decrypt
from .adapters import get_adapter
from .base import ProviderAdapter

# slug -> (base URL setting, API key setting)
_ENV = {
    "joypix": ("JOYPIX_BASE_URL", "JOYPIX_API_KEY"),
    "lipsync_studio": ("LIPSYNC_STUDIO_BASE_URL", "LIPSYNC_STUDIO_API_KEY"),
}


@dataclass(frozen=True)
class Endpoint:
    slug: str
    base_url: str
    api_key: str = field(repr=False)
    is_sandbox: bool
    # The sandbox renders far faster than a real provider; its real-time
    # factor drives the first poll and the progress bars instead.
    rtf_override: float | None = None
    # What the studio uses, in words: "account: <name>", "environment" or "sandbox".
    source: str = ""


def _env_pair(slug: str) -> tuple[str, str]:
    url_setting, key_setting = _ENV[slug]
    return getattr(settings, url_setting, ""), getattr(settings, key_setting, "")


def endpoint_for(slug: str) -> Endpoint:
    """One query. Raises ProviderKeyUnreadable when the enabled account's key
    cannot be decrypted: its jobs must not quietly go elsewhere."""
    account = (
        ProviderAccount.objects.filter(provider=slug, enabled=True)
        .only("id", "provider", "name", "base_url", "api_key_encrypted")
        .first()
    )
    if account is not None:
        return Endpoint(
            slug=slug,
            base_url=account.base_url,
            api_key=provider_key_decrypt(account),
            is_sandbox=False,
            source=f"account: {account.name}",
        )
    base_url, api_key = _env_pair(slug)
    if base_url and api_key:
        return Endpoint(
            slug=slug, base_url=base_url, api_key=api_key, is_sandbox=False, source="environment"
        )
    return Endpoint(
        slug=slug,
        base_url=settings.SANDBOX_URL,
        api_key=settings.SANDBOX_API_KEY,
        is_sandbox=True,
        rtf_override=settings.SANDBOX_RTF,
        source="sandbox",
    )


def provider_destination(slug: str) -> str:
    """The base URL `slug`'s jobs go to, as endpoint_for picks it, with no key
    read: what the render times learnt from its jobs belong to."""
    base_url = (
        ProviderAccount.objects.filter(provider=slug, enabled=True)
        .values_list("base_url", flat=True)
        .first()
    )
    if base_url is not None:
        return base_url
    env_url, env_key = _env_pair(slug)
    if env_url and env_key:
        return env_url
    return settings.SANDBOX_URL


def adapter_for(endpoint: Endpoint, *, session: requests.Session | None = None) -> ProviderAdapter:
    """An adapter for a configured endpoint, with the timeouts from settings."""
    return get_adapter(
        endpoint.slug,
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        session=session,
        connect_timeout=getattr(settings, "PROVIDER_CONNECT_TIMEOUT", 5),
        read_timeout=getattr(settings, "PROVIDER_READ_TIMEOUT", 30),
    )


def provider_sources() -> dict[str, str]:
    """Each provider's endpoint source, as Endpoint.source words, for pages
    that only say what is in use: one query for all, and no key decrypted
    (so they still work when a stored key cannot be read)."""
    accounts = dict(ProviderAccount.objects.filter(enabled=True).values_list("provider", "name"))
    sources = {}
    for slug in _ENV:
        if slug in accounts:
            sources[slug] = f"account: {accounts[slug]}"
        elif all(_env_pair(slug)):
            sources[slug] = "environment"
        else:
            sources[slug] = "sandbox"
    return sources


def sandbox_needed() -> bool:
    return "sandbox" in provider_sources().values()


_rtf_memo: dict[tuple, tuple[float, float | None]] = {}
RTF_MEMO_SECONDS = 5.0


def sandbox_rtf(slug: str) -> float | None:
    """The sandbox's real-time factor when `slug` goes to the sandbox, else
    None. Every processing card asks, so the answer is kept for a few seconds
    per process: a page of cards costs no query per card, and no key is read."""
    now = time.monotonic()
    key = (slug, settings.SANDBOX_RTF, *_env_pair(slug))
    memo = _rtf_memo.get(key)
    if memo is None or now - memo[0] > RTF_MEMO_SECONDS:
        rtf = settings.SANDBOX_RTF if provider_sources()[slug] == "sandbox" else None
        memo = _rtf_memo[key] = (now, rtf)
    return memo[1]
