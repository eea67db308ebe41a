"""Which adapters exist, and building one by provider slug. No Django here:
routing.adapter_for builds one for a configured endpoint with the settings'
timeouts. The providers' facts (labels, modes, models) are in catalogue.py."""

from __future__ import annotations

import requests

from .base import ProviderAdapter
from .joypix import JoyPixAdapter
from .lipsync_studio import LipsyncStudioAdapter

ADAPTERS: tuple[type[ProviderAdapter], ...] = (JoyPixAdapter, LipsyncStudioAdapter)
_BY_SLUG = {adapter.facts.slug: adapter for adapter in ADAPTERS}


def adapter_class(slug: str) -> type[ProviderAdapter]:
    try:
        return _BY_SLUG[slug]
    except KeyError:
        raise KeyError(f"No provider adapter is called {slug!r}.") from None


def get_adapter(
    slug: str,
    *,
    base_url: str,
    api_key: str,
    session: requests.Session | None = None,
    connect_timeout: float = 5,
    read_timeout: float = 30,
) -> ProviderAdapter:
    return adapter_class(slug)(
        base_url=base_url,
        api_key=api_key,
        session=session,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
