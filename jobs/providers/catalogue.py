"""What the studio knows about each provider, as plain data: slug, label, the
model it runs for each studio mode, how fast it renders, how long it keeps an
output, whether it calls webhooks and whether a dialog's speaking order is
asked for.

Models, forms, the gallery and the pipeline read these facts here; the
adapters (which speak HTTP) point at their entry. Pure Python: this module
imports no Django, no requests and nothing else from jobs, so importing it is
free anywhere (jobs.models reads its choices).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType


class NotOffered(ValueError):
    """The provider does not make this mode; str() says so in a sentence."""


@dataclass(frozen=True, kw_only=True)
class ProviderFacts:
    slug: str
    label: str
    models: Mapping[str, str]  # studio mode -> the provider's model name
    rtf_by_resolution: Mapping[str, float]  # seconds of work per second of video
    output_ttl: timedelta  # how long the provider keeps an output
    supports_webhooks: bool = False
    # Whether a dialog can take turns or speak at once (the Studio then asks).
    takes_dialog_order: bool = False

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.models)

    def model_for(self, mode: str) -> str:
        try:
            return self.models[mode]
        except KeyError:
            raise NotOffered(f"{self.label} does not make {mode} videos.") from None

    def rtf(self, resolution: str) -> float:
        return self.rtf_by_resolution[resolution]


# ../shared/seeds/joypix-motion-2-dialog-api.txt; motion-2 (one speaker) from
# JoyPix's "Get started with API" page (../shared/provider-facts.md), whose
# speed is assumed the same as motion-2-dialog's until measured.
JOYPIX = ProviderFacts(
    slug="joypix",
    label="JoyPix",
    models=MappingProxyType({"dialog": "motion-2-dialog", "talking_photo": "motion-2"}),
    rtf_by_resolution=MappingProxyType({"480p": 15.0, "720p": 25.0}),  # "~15 ... 720p ~25"
    output_ttl=timedelta(hours=72),  # "Generated videos are stored for 72 hours."
    supports_webhooks=False,  # the page offers polling only
)

# ../shared/seeds/lipsync-studio-api.txt. The page states neither a speed nor
# a retention: assumed the same as JoyPix's until measured.
LIPSYNC_STUDIO = ProviderFacts(
    slug="lipsync_studio",
    label="lipsync.studio",
    models=MappingProxyType(
        {
            "video_dub": "lipsync-video",
            "talking_photo": "lipsync-image",
            "dialog": "lipsync-image-multi",
        }
    ),
    rtf_by_resolution=MappingProxyType({"480p": 15.0, "720p": 25.0}),
    output_ttl=timedelta(hours=72),
    supports_webhooks=True,
    takes_dialog_order=True,
)

PROVIDERS: tuple[ProviderFacts, ...] = (JOYPIX, LIPSYNC_STUDIO)
_BY_SLUG = {facts.slug: facts for facts in PROVIDERS}

# The provider offered first (the default) for each mode, where it is not the
# first in PROVIDERS that makes it: talking photos stayed on lipsync.studio
# when JoyPix's motion-2 came.
DEFAULT_FOR_MODE: Mapping[str, str] = MappingProxyType({"talking_photo": LIPSYNC_STUDIO.slug})


def provider_facts(slug: str) -> ProviderFacts:
    try:
        return _BY_SLUG[slug]
    except KeyError:
        raise KeyError(f"No provider is called {slug!r}.") from None


def provider_choices() -> list[tuple[str, str]]:
    """(slug, label) of every provider: model and form choices."""
    return [(facts.slug, facts.label) for facts in PROVIDERS]


def provider_choices_for(mode: str) -> list[tuple[str, str]]:
    """(slug, label) of the providers that make `mode`, the default first."""
    making = [(facts.slug, facts.label) for facts in PROVIDERS if mode in facts.models]
    default = DEFAULT_FOR_MODE.get(mode)
    return sorted(making, key=lambda choice: choice[0] != default)


def label_of(slug: str) -> str:
    return provider_facts(slug).label


def modes_of(slug: str) -> tuple[str, ...]:
    return provider_facts(slug).modes


def model_for(slug: str, mode: str) -> str:
    """The provider's model for a studio mode; NotOffered if it has none."""
    return provider_facts(slug).model_for(mode)


def takes_dialog_order(slug: str) -> bool:
    return provider_facts(slug).takes_dialog_order
