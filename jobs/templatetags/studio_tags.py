"""Formatting for the studio's pages: credits with units, signed changes, and
what a ledger entry means for the member reading it."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timeuntil

from jobs.accounts.api_keys import api_key_display
from jobs.credits.pricing import terms_text
from jobs.files.media import format_duration
from jobs.models import EntryKind
from jobs.providers import catalogue
from jobs.staff.credit_changes import staff_to_ask as _staff_to_ask
from jobs.studio.cards import PILL, Countdown, job_countdowns, short_duration

register = template.Library()

MINUS = "\u2212"  # a real minus sign: as wide as the plus, read out as "minus"

# Pill colour per ledger entry kind; the pill always carries the kind's word.
ENTRY_TONE = {
    EntryKind.GRANT: "success",
    EntryKind.ADJUST: "info",
    EntryKind.HOLD: "warning",
    EntryKind.CAPTURE: "accent",
    EntryKind.RELEASE: "neutral",
}


@register.filter
def number(value) -> str:
    """1250 -> "1,250"."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return ""
    text = f"{abs(value):,}"
    return f"{MINUS}{text}" if value < 0 else text


@register.filter
def credits(value) -> str:
    """1250 -> "1,250 credits", 1 -> "1 credit"."""
    text = number(value)
    if not text:
        return ""
    return f"{text} credit" if int(value) == 1 else f"{text} credits"


@register.filter
def signed(value) -> str:
    """500 -> "+500", -120 -> "−120", 0 -> "0"."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return ""
    if value > 0:
        return f"+{value:,}"
    if value < 0:
        return f"{MINUS}{abs(value):,}"
    return "0"


@register.filter
def available_change(entry) -> int:
    """What an entry did to the member's available credits.

    A hold sets credits aside (−); its capture charges some or all of them and
    returns the rest (+ the rest); a release returns the whole hold (+).
    Summed over the history, this is the available balance.
    """
    if entry.kind in (EntryKind.GRANT, EntryKind.ADJUST):
        return entry.amount
    if entry.kind == EntryKind.HOLD:
        return -entry.amount
    if entry.kind == EntryKind.CAPTURE:
        return (entry.hold.amount if entry.hold else entry.amount) - entry.amount
    if entry.kind == EntryKind.RELEASE:
        return entry.amount
    return 0


@register.filter
def entry_tone(entry) -> str:
    return ENTRY_TONE.get(entry.kind, "neutral")


@register.filter
def entry_explained(entry) -> str:
    """A short sentence on what the entry did, beside its reason."""
    job = f" for job #{entry.job_id}" if entry.job_id else ""
    if entry.kind == EntryKind.GRANT:
        return "Added by staff" if entry.created_by_id else "Added"
    if entry.kind == EntryKind.ADJUST:
        return "Corrected by staff" if entry.created_by_id else "Corrected"
    if entry.kind == EntryKind.HOLD:
        return f"Set aside{job} until it ends"
    if entry.kind == EntryKind.CAPTURE:
        held = entry.hold.amount if entry.hold else entry.amount
        if held > entry.amount:
            returned = held - entry.amount
            return f"Charged {entry.amount:,} of {held:,} held{job}; {returned:,} returned"
        return f"Charged {entry.amount:,} held{job}"
    if entry.kind == EntryKind.RELEASE:
        return f"Hold returned{job}"
    return ""


@register.filter
def described_by(field, element_id: str):
    """Render a bound field's input also described by `element_id` (a form-level
    error, say), keeping Django's own help and error ids."""
    ids = " ".join(part for part in (field.aria_describedby, element_id) if part)
    return field.as_widget(attrs={"aria-describedby": ids, "aria-invalid": "true"})


@register.filter
def job_tone(job) -> str:
    return PILL.get(job.state, "neutral")


@register.filter
def provider_label(slug: str) -> str:
    try:
        return catalogue.label_of(slug)
    except KeyError:
        return slug


@register.filter
def duration(seconds) -> str:
    """6.1 -> "0:06"; durations under a minute keep a decimal: "6.1 s"."""
    if seconds is None:
        return ""
    seconds = float(seconds)
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


@register.filter
def rate_terms(priced) -> str:
    """A job's (or rate's) price in words: "4 credits per second, 5 s minimum"."""
    return terms_text(
        credits_per_unit=priced.credits_per_unit,
        unit_seconds=priced.unit_seconds,
        min_seconds=priced.min_seconds,
    )


@register.filter
def mul(value, factor):
    try:
        return int(value) * int(factor)
    except (TypeError, ValueError):
        return ""


@register.filter
def epoch_ms(moment: datetime | None) -> str:
    return str(int(moment.timestamp() * 1000)) if moment else ""


@register.filter
def key_display(key) -> str:
    """`sk_ab12cd34_…`: the public part of an API key."""
    return api_key_display(key)


@register.filter
def countdowns(job) -> tuple:
    """The deletions that apply to a job's files, soonest first."""
    return job_countdowns(job)


@register.filter
def render_time(expected) -> str:
    """A render time (timedelta) in words: "40 s", "2 min 05 s", "25 min", "4 h 10 min"."""
    if expected is None:
        return ""
    seconds = expected.total_seconds()
    if seconds < 600:
        return short_duration(seconds)
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


@register.simple_tag
def staff_to_ask() -> str:
    """The staff a member asks for credits, by name: "Ann Lee or Bob"."""
    names = _staff_to_ask()
    if not names:
        return "the studio's staff"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


@register.filter
def job_url(job) -> str:
    """Where "open it" takes a member for one of their jobs: its own page."""
    return job.get_absolute_url()


@register.simple_tag
def icon(name: str, css_class: str = "") -> str:
    """jobs/_icon.html for `name`, as {% include "jobs/_icon.html" with name=…
    class=… %} writes it. Its markup depends on nothing else, so each icon is
    rendered once per process and reused: an include is a template render with
    a fifteen-branch {% if %}, and a gallery page shows some thirty icons.
    With DEBUG on it is rendered every time, so an edited icon shows at once."""
    if settings.DEBUG:
        return _icon_render(name, css_class)
    return _icon_cached(name, css_class)


def _icon_render(name: str, css_class: str) -> str:
    return render_to_string("jobs/_icon.html", {"name": name, "class": css_class})


_icon_cached = lru_cache(maxsize=64)(_icon_render)


@dataclass(frozen=True)
class CountdownShown:
    """A countdown's values as its markup prints them."""

    label: str
    until_ms: str
    warn_from_ms: str
    until_iso: str  # |date:"c"
    until_title: str  # |date:"j M Y, H:i": "12 Mar 2026, 14:05"
    left: str  # |timeuntil: "4 days, 2 hours"


def countdown_shown(
    countdown: Countdown, *, day: Callable[[datetime], str] | None = None
) -> CountdownShown:
    """`day` writes |date:"j M Y" (the gallery passes a cheaper one it made once a page)."""
    local = timezone.localtime(countdown.until)
    day_text = day(local) if day is not None else date_format(local, "j M Y")
    return CountdownShown(
        label=countdown.label,
        until_ms=epoch_ms(countdown.until),
        warn_from_ms=epoch_ms(countdown.warn_from),
        until_iso=local.isoformat(),
        until_title=f"{day_text}, {local.hour:02d}:{local.minute:02d}",
        left=timeuntil(countdown.until),
    )


@register.simple_tag
def countdown(value: Countdown | CountdownShown) -> SafeString:
    """A countdown (js/ui/countdowns.js ticks it), the one writer of its
    markup for every page: the cards, a job's page and the gallery."""
    shown = value if isinstance(value, CountdownShown) else countdown_shown(value)
    return format_html(
        '<p class="countdown">{}<span>{} <time data-countdown="{}" data-warn-from="{}" '
        'datetime="{}" title="{}">{}</time></span></p>',
        icon("clock"),
        shown.label,
        shown.until_ms,
        shown.warn_from_ms,
        shown.until_iso,
        shown.until_title,
        shown.left,
    )
