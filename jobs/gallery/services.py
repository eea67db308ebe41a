"""The team's gallery: which finished videos a member sees, its filters and
pages, sharing, posters, and "remix" (a new job from an item's inputs).

Reads are bounded: a page is one query for the jobs (owner joined, whether a
picture exists computed in the same query), whatever the page's size, and
pages continue from the last item shown (finished_at, id) rather than by
offset, so a deep page costs what the first one does. The partial indexes
`job_gallery_state_recent` and `job_gallery_owner_state` serve the
newest-first order (on SQLite too), and on PostgreSQL `job_prompt_trgm`
serves the prompt search.
"""

from __future__ import annotations

import html
import logging
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from jobs.files import media
from jobs.files.storage import local_copy
from jobs.models import Job, JobInput, JobMode, JobState, Resolution, Upload
from jobs.pipeline.selectors import jobs_visible_to
from jobs.providers import catalogue
from jobs.studio.uploads import upload_copy

log = logging.getLogger("jobs.gallery.services")

PAGE_SIZE = 24
SEARCH_WORDS = 6
# Where in the video the poster frame is taken, at most.
POSTER_AT_SECONDS = 1.0
POSTER_MAX_WIDTH = 640
# Pictures first, then the sound, then a dub's optional mask.
ROLE_ORDER = {
    role: i
    for i, role in enumerate(("image", "video", "left_audio", "right_audio", "audio", "mask"))
}


# --- Filters ------------------------------------------------------------------------


# The days a date filter takes: any day a job can have finished on, each with
# a day after it in every time zone (9999-12-31 has none, 0001-01-01 none before).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        # The browser's date picker stays within the days we take.
        attrs = {"min": FIRST_DAY.isoformat(), "max": LAST_DAY.isoformat()}
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class OptionsSelect(forms.Select):
    """Django's <select>, markup for markup, with its options written here
    rather than through one template include each: the "Made by" filter has an
    option per member, and at a hundred members those includes cost more than
    the whole grid of videos. Grouped choices go to Django's own."""

    def render(self, name, value, attrs=None, renderer=None):
        if any(isinstance(label, (list, tuple)) for _value, label in self.choices):
            return super().render(name, value, attrs, renderer)
        chosen = self.format_value(value)
        found = False  # the first option with the value is the selected one, as in Django
        options = []
        for option_value, label in self.choices:
            option_value = "" if option_value is None else str(option_value)
            selected = not found and option_value in chosen
            found |= selected
            options.append(
                f'\n  <option value="{_escape(option_value)}"{" selected" if selected else ""}>'
                f"{_escape(label)}</option>\n"
            )
        attrs_html = _attrs_html(self.build_attrs(self.attrs, attrs))
        options_html = "".join(options)
        name = _escape(name)
        return mark_safe(f'<select name="{name}"{attrs_html}>{options_html}\n</select>')


def _attrs_html(attrs: dict) -> str:
    """As django/forms/widgets/attrs.html writes them: True as a bare name,
    False left out, in the given order."""
    parts = []
    for name, value in attrs.items():
        if value is True:
            parts.append(f" {_escape(name)}")
        elif value is not False:
            parts.append(f' {_escape(name)}="{_escape(value)}"')
    return "".join(parts)


def _escape(value) -> str:
    """conditional_escape() without its lazy-string wrapper, which cost more
    than the escaping itself over a hundred options."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _owner_choices() -> list[tuple[str, str]]:
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .order_by("first_name", "username")
        .values_list("pk", "username", "first_name", "last_name")
    )
    return [(str(pk), f"{first} {last}".strip() or username) for pk, username, first, last in users]


class GalleryFilterForm(forms.Form):
    """The gallery's filters, from the query string. Each one that is wrong
    says so on its field and is left out; the others still apply."""

    q = forms.CharField(
        label="Search prompts",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. happily"}),
    )
    mode = forms.ChoiceField(label="Kind", required=False, widget=OptionsSelect)
    provider = forms.ChoiceField(label="Provider", required=False, widget=OptionsSelect)
    owner = forms.ChoiceField(label="Made by", required=False, widget=OptionsSelect)
    resolution = forms.ChoiceField(label="Resolution", required=False, widget=OptionsSelect)
    date_from = forms.DateField(label="From", required=False, widget=DateInput())
    date_to = forms.DateField(label="To", required=False, widget=DateInput())

    NAMES = ("q", "mode", "provider", "owner", "resolution", "date_from", "date_to")

    def __init__(self, data=None, **kwargs):
        # Only our own names: "before" and the like are not filters.
        if data is not None:
            data = {name: data.get(name, "") for name in self.NAMES if data.get(name)}
        super().__init__(data, **kwargs)
        self.fields["mode"].choices = [("", "Any kind"), *JobMode.choices]
        self.fields["provider"].choices = [("", "Any provider"), *catalogue.provider_choices()]
        self.fields["owner"].choices = [("", "Anyone"), *_owner_choices()]
        self.fields["resolution"].choices = [("", "Any"), *Resolution.choices]

    def clean_date_from(self):
        return _day_in_range(self.cleaned_data["date_from"])

    def clean_date_to(self):
        return _day_in_range(self.cleaned_data["date_to"])

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "This date is before the “From” date.")
        return cleaned

    def filters(self) -> GalleryFilters:
        """The filters that are valid (all of them, or none when unbound)."""
        if not self.is_bound:
            return GalleryFilters()
        self.is_valid()
        good = {n: v for n, v in self.cleaned_data.items() if n not in self.errors and v}
        return GalleryFilters(
            q=good.get("q", "").strip(),
            mode=good.get("mode", ""),
            provider=good.get("provider", ""),
            owner_id=int(good["owner"]) if good.get("owner") else None,
            resolution=good.get("resolution", ""),
            date_from=good.get("date_from"),
            date_to=good.get("date_to"),
        )

    @property
    def has_errors(self) -> bool:
        return self.is_bound and bool(self.errors)


def _day_in_range(day: date | None) -> date | None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise forms.ValidationError(
            f"Choose a date from {FIRST_DAY:%-d %b %Y} to {LAST_DAY:%-d %b %Y}."
        )
    return day


@dataclass(frozen=True)
class GalleryFilters:
    q: str = ""
    mode: str = ""
    provider: str = ""
    owner_id: int | None = None
    resolution: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @property
    def active(self) -> bool:
        return any((self.q, self.mode, self.provider, self.owner_id, self.resolution)) or bool(
            self.date_from or self.date_to
        )

    def params(self) -> dict[str, str]:
        """The filters as query parameters, so a view can be linked to."""
        found = {
            "q": self.q,
            "mode": self.mode,
            "provider": self.provider,
            "owner": str(self.owner_id) if self.owner_id else "",
            "resolution": self.resolution,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return {name: value for name, value in found.items() if value}

    def apply(self, qs: QuerySet[Job]) -> QuerySet[Job]:
        if self.mode:
            qs = qs.filter(mode=self.mode)
        if self.provider:
            qs = qs.filter(provider=self.provider)
        if self.owner_id:
            qs = qs.filter(owner_id=self.owner_id)
        if self.resolution:
            qs = qs.filter(resolution=self.resolution)
        zone = timezone.get_current_timezone()
        if self.date_from:
            qs = qs.filter(finished_at__gte=datetime.combine(self.date_from, time.min, zone))
        if self.date_to:
            day_after = self.date_to + timedelta(days=1)
            qs = qs.filter(finished_at__lt=datetime.combine(day_after, time.min, zone))
        for word in self.q.split()[:SEARCH_WORDS]:
            qs = qs.filter(prompt__icontains=word)
        return qs


# --- Reading a page -------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the item finished at `finished_at`
    with this id (newest first)."""

    finished_at: datetime
    pk: int

    FORMAT = "%Y%m%dT%H%M%S%f"

    def __str__(self) -> str:
        return f"{self.finished_at.astimezone(UTC):{self.FORMAT}}.{self.pk}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        try:
            stamp, pk = (raw or "").split(".")
            moment = datetime.strptime(stamp, cls.FORMAT).replace(tzinfo=UTC)
            return cls(finished_at=moment, pk=int(pk))
        except ValueError:
            return None


@dataclass(frozen=True)
class GalleryPage:
    jobs: list[Job]
    next_cursor: Cursor | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def gallery_jobs(*, viewer, filters: GalleryFilters | None = None) -> QuerySet[Job]:
    """Finished videos the viewer may see, newest first: every shared one, the
    viewer's own whether shared or not, and for staff all of them."""
    qs = jobs_visible_to(viewer).filter(state=JobState.COMPLETED, finished_at__isnull=False)
    if filters is not None:
        qs = filters.apply(qs)
    return qs.select_related("owner").order_by("-finished_at", "-id")


def _mark_thumbnails(jobs: list[Job]) -> None:
    """Set `has_thumb` on each job: whether its photo (or a dub's video) has a
    thumbnail to stand in for a missing poster. One query, for the page's jobs
    without a poster only (an Exists() per row makes PostgreSQL hash the
    whole inputs table)."""
    without = [job.pk for job in jobs if not job.poster]
    found = set()
    if without:
        found = set(
            JobInput.objects.filter(job_id__in=without)
            .with_picture()
            .values_list("job_id", flat=True)
        )
    for job in jobs:
        job.has_thumb = job.pk in found


# What a page of the grid reads of each job and its owner (jobs/gallery/items.py
# and the retention countdowns): a job row has some sixty columns, and making
# model instances of all of them was a tenth of the page's time.
GRID_FIELDS = (
    *("mode", "provider", "resolution", "prompt", "shared", "state", "finished_at"),
    *("output", "output_seconds", "poster", "archive_expires_at", "provider_expires_at"),
    *("output_purged_at", "inputs_purged_at", "deleted_at"),
    *("owner__username", "owner__first_name", "owner__last_name"),
)


def gallery_page(
    *,
    viewer,
    filters: GalleryFilters,
    after: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> GalleryPage:
    qs = gallery_jobs(viewer=viewer, filters=filters).only(*GRID_FIELDS)
    if after is not None:
        # The first condition bounds the index range; the second breaks ties.
        qs = qs.filter(finished_at__lte=after.finished_at).filter(
            Q(finished_at__lt=after.finished_at) | Q(pk__lt=after.pk)
        )
    jobs = list(qs[: size + 1])
    more = len(jobs) > size
    jobs = jobs[:size]
    _mark_thumbnails(jobs)
    cursor = Cursor(jobs[-1].finished_at, jobs[-1].pk) if more else None
    return GalleryPage(jobs=jobs, next_cursor=cursor)


def gallery_item(*, viewer, pk: int) -> Job:
    """One item for its detail page (404 unless the viewer may see it)."""
    job = gallery_jobs(viewer=viewer).filter(pk=pk).first()
    if job is None:
        raise Http404("No such video.")
    return job


def item_inputs(job: Job) -> list[JobInput]:
    """The item's inputs, in the order the Studio form asks for them; sets
    `has_thumb` on the job as a page of items does."""
    inputs = sorted(job.inputs.all(), key=lambda inp: ROLE_ORDER.get(inp.role, 99))
    job.has_thumb = any(inp.has_picture for inp in inputs)
    return inputs


# --- Writes ------------------------------------------------------------------------


def job_share_set(*, job: Job, shared: bool) -> None:
    """Show the job in the team's gallery, or keep it to its owner (and staff)."""
    Job.objects.filter(pk=job.pk).update(shared=shared, updated_at=timezone.now())
    job.shared = shared


def job_poster_make(*, job: Job, video: Path | None = None) -> bool:
    """Store a small WebP still of the job's video as its poster. Never raises:
    a video without a poster still plays, and the gallery falls back to the
    input's thumbnail. `video`: a local file of the output already at hand
    (the archive's download), else the stored one is read. Returns whether a
    poster was stored."""
    try:
        if not job.output:
            return False
        at = POSTER_AT_SECONDS
        if job.output_seconds:
            at = min(POSTER_AT_SECONDS, job.output_seconds / 3)
        with (
            tempfile.TemporaryDirectory() as tmp,
            nullcontext(video) if video else local_copy(job.output.name) as source,
        ):
            out = media.poster_frame(
                source, Path(tmp) / "poster.webp", at_seconds=at, max_width=POSTER_MAX_WIDTH
            )
            with open(out, "rb") as fh:
                now = timezone.now()
                name = default_storage.save(f"posters/{now:%Y/%m}/job-{job.pk}.webp", File(fh))
        old = job.poster.name if job.poster else ""
        Job.objects.filter(pk=job.pk).update(poster=name)
        job.poster.name = name
        if old and old != name:
            default_storage.delete(old)
        return True
    except Exception:  # noqa: BLE001 - a missing poster must never fail the archive
        log.exception("job %s: no poster could be made", job.pk)
        return False


class RemixUnavailable(Exception):
    """The item's inputs are gone; the message says so, for the member."""


def job_remix(*, job: Job, member) -> str:
    """Copy the job's inputs for `member` as staged uploads and return the
    Studio URL whose form opens with them and the job's options."""
    inputs = list(job.inputs.all())
    if job.inputs_purged_at or not inputs or any(not inp.file for inp in inputs):
        when = f" on {job.inputs_purged_at:%-d %b %Y}" if job.inputs_purged_at else ""
        raise RemixUnavailable(
            f"The input files of job #{job.pk} were removed{when}, so it cannot be remixed."
        )
    copies: list[tuple[str, Upload]] = []
    try:
        with transaction.atomic():
            for inp in inputs:
                copies.append((inp.role, upload_copy(inp, owner=member)))
    except OSError as exc:
        for _role, copy in copies:
            for f in (copy.file, copy.thumbnail):
                if f:
                    default_storage.delete(f.name)
        log.warning("job %s: remix failed to copy an input (%s)", job.pk, exc)
        raise RemixUnavailable(
            f"The input files of job #{job.pk} could not be read, so it cannot be remixed."
        ) from exc
    params = {
        "mode": job.mode,
        "provider": job.provider,
        "resolution": job.resolution,
        "prompt": job.prompt,
        "seed": str(job.seed),
    }
    if job.dialog_order:
        params["dialog_order"] = job.dialog_order
    params |= {f"{role}_upload": str(copy.pk) for role, copy in copies}
    return f"{reverse('studio')}?{urlencode(params)}"
