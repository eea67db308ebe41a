"""Where each provider is reached: a real account from the environment, or the
sandbox when none is configured. Keys never leave this object except in the
Authorization header (the repr hides them)."""

from dataclasses import dataclass, field

from django.conf import settings

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


def endpoint_for(slug: str) -> Endpoint:
    url_setting, key_setting = _ENV[slug]
    base_url = getattr(settings, url_setting, "")
    api_key = getattr(settings, key_setting, "")
    if base_url and api_key:
        return Endpoint(slug=slug, base_url=base_url, api_key=api_key, is_sandbox=False)
    return Endpoint(
        slug=slug,
        base_url=settings.SANDBOX_URL,
        api_key=settings.SANDBOX_API_KEY,
        is_sandbox=True,
        rtf_override=settings.SANDBOX_RTF,
    )


def sandbox_needed() -> bool:
    return any(endpoint_for(slug).is_sandbox for slug in _ENV)
