"""What one item of the gallery's grid shows, worked out in Python.

The template engine costs per node, and an item's partial had about eighty
(four {% url %}s, display methods, filter chains, a countdown include with an
icon include inside): at 24 items a page that was most of the gallery's CPU.
Here each value is computed once, with the same functions those tags and
filters call, so the partial prints ready-made strings and the markup a
member sees is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.text import Truncator
from django.utils.timesince import timeuntil

from jobs.models import Job
from jobs.studio.cards import job_countdowns
from jobs.templatetags.studio_tags import duration, epoch_ms, provider_label

PROMPT_SHOWN = 200  # characters of the prompt on the card; the rest is in its title


@dataclass(frozen=True)
class ItemCountdown:
    label: str
    until_ms: str
    warn_from_ms: str
    until_iso: str
    until_title: str  # "12 Mar 2026, 14:05"
    left: str  # "4 days, 2 hours", as |timeuntil writes it


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
    countdowns: tuple[ItemCountdown, ...]


def gallery_items(jobs: list[Job]) -> list[GalleryItem]:
    """The page's items. Needs `has_thumb` set on each job
    (services._mark_thumbnails) and the owner joined."""
    urls = {name: _pk_url(name) for name in ("gallery_detail", "job_video", "job_poster")}
    return [gallery_item_of(job, urls) for job in jobs]


def _pk_url(name: str) -> Callable[[int], str]:
    """reverse(name, args=[pk]) for any pk, from a single reverse(): the
    route's only argument is an <int:pk>, written as str(pk)."""
    marker = 987654321
    before, after = reverse(name, args=[marker]).split(str(marker))
    return lambda pk: f"{before}{pk}{after}"


def gallery_item_of(job: Job, urls: dict[str, Callable[[int], str]]) -> GalleryItem:
    owner = job.owner
    username = owner.get_username()
    finished = timezone.localtime(job.finished_at)
    has_poster = job.poster or job.has_thumb
    return GalleryItem(
        pk=job.pk,
        detail_url=urls["gallery_detail"](job.pk),
        video_url=urls["job_video"](job.pk) if job.output else "",
        poster_url=urls["job_poster"](job.pk) if has_poster else "",
        mode_label=job.get_mode_display(),
        provider_label=provider_label(job.provider),
        resolution_label=job.get_resolution_display(),
        owner_name=owner.get_full_name() or username,
        owner_initial=(owner.get_short_name() or username)[:1].upper(),
        prompt=job.prompt,
        prompt_shown=Truncator(job.prompt).chars(PROMPT_SHOWN),
        duration=duration(job.output_seconds) if job.output_seconds else "",
        shared=job.shared,
        finished_iso=finished.isoformat(),  # what |date:"c" writes
        finished_day=dateformat.format(finished, "j M Y"),
        countdowns=tuple(_countdown(c.label, c.until, c.warn_from) for c in job_countdowns(job)),
    )


def _countdown(label: str, until: datetime, warn_from: datetime) -> ItemCountdown:
    local = timezone.localtime(until)
    return ItemCountdown(
        label=label,
        until_ms=epoch_ms(until),
        warn_from_ms=epoch_ms(warn_from),
        until_iso=local.isoformat(),
        until_title=dateformat.format(local, "j M Y, H:i"),
        left=timeuntil(until),
    )
