"""The dashboard's period: whole days in the site's time zone, the end day
included, and the form that chooses one."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import Q
from django.utils import timezone

DEFAULT_DAYS = 30
MAX_DAYS = 366  # one bar per day stays readable up to a year
MAX_EXPORT_DAYS = 3660


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @classmethod
    def last(cls, days: int = DEFAULT_DAYS, *, today: date | None = None) -> "Period":
        today = today or timezone.localdate()
        return cls(start=today - timedelta(days=days - 1), end=today)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first moment after the period."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def query(self) -> str:
        return f"start={self.start:%Y-%m-%d}&end={self.end:%Y-%m-%d}"

    def created_query(self) -> str:
        """The admin job list's own filter for jobs created in the period."""
        after = self.end + timedelta(days=1)
        return f"created_at__gte={self.start:%Y-%m-%d}&created_at__lt={after:%Y-%m-%d}"

    def within(self, field: str = "created_at") -> Q:
        """A filter for rows whose `field` falls in the period."""
        return Q(**{f"{field}__gte": self.since, f"{field}__lt": self.until})

    def __str__(self) -> str:
        return f"{day_label(self.start)} {self.start:%Y} – {day_label(self.end)} {self.end:%Y}"


def day_label(day: date) -> str:
    """`3 Mar`: the day without a leading zero, portably."""
    return f"{day.day} {day:%b}"


class PeriodForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To (included)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, max_days: int = MAX_DAYS, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_days = max_days
        default = Period.last()
        self.fields["start"].widget.attrs["placeholder"] = f"{default.start:%Y-%m-%d}"
        self.fields["end"].widget.attrs["placeholder"] = f"{default.end:%Y-%m-%d}"

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        default = Period.last()
        end = data.get("end") or default.end
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            self.add_error("end", "The end comes before the start.")
        elif (end - start).days + 1 > self.max_days:
            self.add_error("start", f"Choose at most {self.max_days} days.")
        else:
            data["period"] = Period(start=start, end=end)
        return data

    @property
    def period(self) -> Period:
        """The chosen period, or the default one while the form has errors."""
        if self.is_valid():
            return self.cleaned_data["period"]
        return Period.last()
