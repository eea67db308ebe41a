"""What one item of the gallery's grid shows, worked out in Python.

The template engine costs per node, and an item's partial had about eighty
(four {% url %}s, display methods, filter chains, a countdown include with an
icon include inside): at 24 items a page that was most of the gallery's CPU.
Here each value is computed once, with the same functions those tags and
filters call, so the partial prints ready-made strings and the markup a
member sees is unchanged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.text import Truncator

from jobs.models import Job
from jobs.studio.cards import job_countdowns
from jobs.templatetags.studio_tags import (
    CountdownShown,
    countdown_shown,
    duration,
    provider_label,
)

PROMPT_SHOWN = 200  # characters of the prompt on the card; the rest is in its title


@dataclass(frozen=True)
class GalleryItem:
    pk: int
    detail_url: str
    video_url: str  # "" once the video is gone
    poster_url: str  # "" without a poster or a thumbnail to stand in
    mode_label: str
    provider_label: str
    resolution_label: str
    owner_name: str
    owner_initial: str
    prompt: str
    prompt_shown: str
    duration: str  # "" when unknown
    shared: bool
    finished_iso: str
    finished_day: str  # "12 Mar 2026"
    countdowns: tuple[CountdownShown, ...]


def gallery_items(jobs: list[Job]) -> list[GalleryItem]:
    """The page's items. Needs `has_thumb` set on each job
    (services._mark_thumbnails) and the owner joined."""
    common = _PageCommon.now()
    return [gallery_item_of(job, common) for job in jobs]


@dataclass(frozen=True)
class _PageCommon:
    """What every item of a page shares, looked up once a page (so in the
    request's language and URL prefix) rather than once an item."""

    detail_url: Callable[[int], str]
    video_url: Callable[[int], str]
    poster_url: Callable[[int], str]
    modes: dict[str, str]
    resolutions: dict[str, str]
    months: tuple[str, ...]  # "", "Jan", … "Dec": |date's "M"

    @classmethod
    def now(cls) -> _PageCommon:
        return cls(
            detail_url=_pk_url("gallery_detail"),
            video_url=_pk_url("job_video"),
            poster_url=_pk_url("job_poster"),
            modes=_labels("mode"),
            resolutions=_labels("resolution"),
            months=("", *(str(MONTHS_3[m]).title() for m in range(1, 13))),
        )

    def day(self, moment: datetime) -> str:
        """|date:"j M Y"."""
        return f"{moment.day} {self.months[moment.month]} {moment.year:04d}"


def _pk_url(name: str) -> Callable[[int], str]:
    """reverse(name, args=[pk]) for any pk, from a single reverse(): the
    route's only argument is an <int:pk>, written as str(pk)."""
    marker = 987654321
    before, after = reverse(name, args=[marker]).split(str(marker))
    return lambda pk: f"{before}{pk}{after}"


def _labels(field: str) -> dict[str, str]:
    """get_<field>_display() for each value (an unknown one shows as itself)."""
    return {value: str(label) for value, label in Job._meta.get_field(field).flatchoices}


def gallery_item_of(job: Job, common: _PageCommon) -> GalleryItem:
    owner = job.owner
    username = owner.get_username()
    finished = timezone.localtime(job.finished_at)
    return GalleryItem(
        pk=job.pk,
        detail_url=common.detail_url(job.pk),
        video_url=common.video_url(job.pk) if job.output else "",
        poster_url=common.poster_url(job.pk) if job.poster or job.has_thumb else "",
        mode_label=common.modes.get(job.mode, job.mode),
        provider_label=provider_label(job.provider),
        resolution_label=common.resolutions.get(job.resolution, job.resolution),
        owner_name=owner.get_full_name() or username,
        owner_initial=(owner.get_short_name() or username)[:1].upper(),
        prompt=job.prompt,
        prompt_shown=_prompt_shown(job.prompt),
        duration=duration(job.output_seconds) if job.output_seconds else "",
        shared=job.shared,
        finished_iso=finished.isoformat(),  # what |date:"c" writes
        finished_day=common.day(finished),
        countdowns=tuple(countdown_shown(c, day=common.day) for c in job_countdowns(job)),
    )


def _prompt_shown(prompt: str) -> str:
    """|truncatechars:PROMPT_SHOWN. A text no longer than that in code points
    is no longer in characters either, so only a longer one is counted."""
    text = unicodedata.normalize("NFC", prompt)
    return text if len(text) <= PROMPT_SHOWN else Truncator(text).chars(PROMPT_SHOWN)
