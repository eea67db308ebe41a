"""The geometry of the dashboard's spend chart (stacked bars per day), drawn
as SVG by the template. No queries: it takes the days it is given."""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from jobs.models import Pool

from .period import day_label


class DayValues(Protocol):
    """One day's figures per pool (the dashboard's DaySpend)."""

    @property
    def day(self) -> date: ...

    @property
    def total(self) -> int: ...

    def of(self, pool: str) -> int: ...


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    pool: str
    value: int
    day: date


@dataclass(frozen=True)
class ChartTick:
    y: float
    value: int


@dataclass(frozen=True)
class ChartLabel:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    bars: list[ChartBar]
    ticks: list[ChartTick]
    labels: list[ChartLabel]
    columns: list[tuple[float, float, DayValues]] = field(default_factory=list)

    @property
    def baseline(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def tick_x(self) -> float:
        return self.left - 8

    @property
    def label_y(self) -> float:
        return self.baseline + 18


def nice_ceiling(value: int, *, steps: int = 4) -> tuple[int, int]:
    """A round axis maximum at or above `value`, and its step."""
    if value <= 0:
        return steps, 1
    raw = value / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step >= raw and step == int(step):
            return int(step) * steps, int(step)
    return int(10 * magnitude) * steps, int(10 * magnitude)  # pragma: no cover


def spend_chart(
    days: list[DayValues],
    *,
    width: int = 1100,
    height: int = 280,
    label: Callable[[date], str] = day_label,
) -> Chart:
    """Geometry of a stacked bar chart (studio below, API above) drawn as SVG
    by the template; the numbers themselves are in a table beside it. A bar
    is a day, or whatever `days` hold (a member's months; `label` names them)."""
    left, right, top, bottom = 56, 12, 12, 30
    plot_width, plot_height = width - left - right, height - top - bottom
    top_value, step = nice_ceiling(max((d.total for d in days), default=0))
    slot = plot_width / max(len(days), 1)
    bar_width = max(1.0, slot * 0.72)
    bars, columns, labels = [], [], []
    every = math.ceil(len(days) / 12) or 1
    for n, day in enumerate(days):
        x = left + n * slot + (slot - bar_width) / 2
        base = top + plot_height
        for pool in (Pool.STUDIO, Pool.API):
            value = day.of(pool)
            if value <= 0:
                continue
            h = plot_height * value / top_value
            base -= h
            bars.append(ChartBar(round(x, 2), round(base, 2), round(bar_width, 2), round(h, 2),
                                 pool, value, day.day))  # fmt: skip
        columns.append((round(left + n * slot, 2), round(slot, 2), day))
        if n % every == 0:
            labels.append(ChartLabel(round(x + bar_width / 2, 2), label(day.day)))
    ticks = [
        ChartTick(round(top + plot_height - plot_height * v / top_value, 2), v)
        for v in range(0, top_value + 1, step)
    ]
    return Chart(width, height, left, top, plot_width, plot_height, bars, ticks, labels, columns)
