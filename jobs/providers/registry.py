"""Which adapters exist, and building one for a provider account."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

from .base import ProviderAdapter
from .joypix import JoyPixAdapter
from .lipsync_studio import LipsyncStudioAdapter

if TYPE_CHECKING:
    from .routing import Endpoint

ADAPTERS: tuple[type[ProviderAdapter], ...] = (JoyPixAdapter, LipsyncStudioAdapter)
_BY_SLUG = {adapter.slug: adapter for adapter in ADAPTERS}


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


def adapter_for(endpoint: Endpoint, *, session: requests.Session | None = None) -> ProviderAdapter:
    """An adapter for a configured endpoint, with the timeouts from settings."""
    from django.conf import settings  # read lazily: this module needs no Django

    return get_adapter(
        endpoint.slug,
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        session=session,
        connect_timeout=getattr(settings, "PROVIDER_CONNECT_TIMEOUT", 5),
        read_timeout=getattr(settings, "PROVIDER_READ_TIMEOUT", 30),
    )


def provider_choices() -> list[tuple[str, str]]:
    return [(adapter.slug, adapter.label) for adapter in ADAPTERS]


def label_of(slug: str) -> str:
    return adapter_class(slug).label


def modes_of(slug: str) -> tuple[str, ...]:
    return tuple(adapter_class(slug).modes)


def model_for(slug: str, mode: str) -> str:
    return adapter_class(slug).model_for(mode)


def takes_dialog_order(slug: str) -> bool:
    return adapter_class(slug).takes_dialog_order
