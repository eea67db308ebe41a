"""The Studio's job column as a history: a member's jobs, newest first, in
pages that continue from the last card shown, narrowed by filters kept in
the address.

Pages continue from the last card's (created_at, id) rather than by offset:
jobs that arrive at the top meanwhile (they come through the card poller)
shift nothing, so "Load older" never repeats or skips a card, and a deep page
costs what the first one does (the `job_owner_recent` index)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from django import forms
from django.db.models import Q, QuerySet

from jobs.models import Job, JobMode, JobSource, JobState
from jobs.providers.catalogue import provider_choices

from .cards import Card, card_for, studio_jobs

PAGE_SIZE = 24
LIVE = "live"


class JobFilterForm(forms.Form):
    """The column's filters. Prefixed (`jobs-state`, …) because the Studio's
    address also carries the new-job form's own `mode` and `provider`."""

    prefix = "jobs"

    state = forms.ChoiceField(
        label="State",
        required=False,
        choices=[("", "Any state"), (LIVE, "In progress"), *JobState.choices],
    )
    mode = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *JobMode.choices]
    )
    # Not "Provider": the new-job form beside it has a field of that name.
    provider = forms.ChoiceField(label="Rendered by", required=False, choices=[])
    source = forms.ChoiceField(
        label="Made in",
        required=False,
        choices=[("", "Studio or API"), *JobSource.choices],
    )

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["provider"].choices = [("", "Any provider"), *provider_choices()]

    def filters(self) -> JobFilters:
        """The filters that are valid; a wrong one is dropped (and shown as
        wrong), the others still apply."""
        if not self.is_bound:
            return JobFilters()
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return JobFilters(**{name: data.get(name) or "" for name in self.fields})


@dataclass(frozen=True)
class JobFilters:
    state: str = ""
    mode: str = ""
    provider: str = ""
    source: str = ""

    @property
    def active(self) -> bool:
        return any(self.params().values())

    def params(self) -> dict[str, str]:
        """The filters in use, as the address carries them."""
        values = {"state": self.state, "mode": self.mode, "provider": self.provider}
        values["source"] = self.source
        return {f"{JobFilterForm.prefix}-{name}": v for name, v in values.items() if v}

    def query(self, **extra: str) -> str:
        return urlencode(self.params() | extra)

    def apply(self, qs: QuerySet[Job]) -> QuerySet[Job]:
        if self.state == LIVE:
            qs = qs.filter(state__in=JobState.live())
        elif self.state:
            qs = qs.filter(state=self.state)
        for name in ("mode", "provider", "source"):
            if value := getattr(self, name):
                qs = qs.filter(**{name: value})
        return qs

    def matches(self, job: Job) -> bool:
        """The same test for one job in hand (a card the poller brings)."""
        if self.state == LIVE and not job.is_live:
            return False
        if self.state not in ("", LIVE) and job.state != self.state:
            return False
        return all(
            getattr(job, name) == value
            for name in ("mode", "provider", "source")
            if (value := getattr(self, name))
        )


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the job created at `created_at`
    with this id (newest first)."""

    created_at: datetime
    pk: int

    FORMAT = "%Y%m%dT%H%M%S%f"

    def __str__(self) -> str:
        return f"{self.created_at.astimezone(UTC):{self.FORMAT}}.{self.pk}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        try:
            stamp, pk = (raw or "").split(".")
            moment = datetime.strptime(stamp, cls.FORMAT).replace(tzinfo=UTC)
            return cls(created_at=moment, pk=int(pk))
        except ValueError:
            return None


@dataclass(frozen=True)
class HistoryPage:
    cards: list[Card]
    next_cursor: Cursor | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def history_page(
    *,
    user,
    filters: JobFilters,
    before: Cursor | None = None,
    size: int = PAGE_SIZE,
    now: datetime | None = None,
) -> HistoryPage:
    """One page of the member's jobs (three queries: the jobs with their API
    key, their inputs, their retries), whatever the page or the history's size."""
    qs = filters.apply(studio_jobs(user))
    if before is not None:
        # The first condition bounds the index range; the second breaks ties.
        qs = qs.filter(created_at__lte=before.created_at).filter(
            Q(created_at__lt=before.created_at) | Q(pk__lt=before.pk)
        )
    jobs = list(qs[: size + 1])
    more = len(jobs) > size
    jobs = jobs[:size]
    cursor = Cursor(jobs[-1].created_at, jobs[-1].pk) if more else None
    return HistoryPage(cards=[card_for(job, now=now) for job in jobs], next_cursor=cursor)
