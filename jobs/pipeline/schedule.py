"""When to ask a provider whether a job is done: the predicted render time as
a distribution, and a poll schedule made from it. Pure Python (no Django,
no database), so the arithmetic is tested on its own; render_times.py stores
and learns the figures, lifecycle.py asks for the next poll.

A prediction is the distribution of r = (provider finish - submit) / billed
seconds, kept as its quantiles at PROBS. For one job the finish is then
expected r(p) x its billed seconds after submission.

The schedule, for a detection-lag target L (POLL_LAG_TARGET_SECONDS):

- the first poll at the job's low quantile (P_LOW): earlier finishers (a few
  percent) wait until it;
- then evenly, at most L apart, up to the high quantile (P_HIGH): every job
  finishing in that window is seen within L;
- past it (the slowest few percent, outliers, a provider slower than learnt),
  intervals grow by TAIL_GROWTH from L up to the tail cap (10 % of the
  median, between L and 30 s), as the old schedule did once a job was late.

So the calls are about (window / L) + 1 status requests, where the window is
set by the spread of the provider's render times, not by their length.

L itself (`lag_to_match`): the goal is a card that shows the video no later
at p95 than a plain poller asking every POLL_MATCH_SECONDS would see the job
done, with the fewest calls. After a poll sees it, the studio still archives
the video and the page asks again, so L is what is left of that poller's p95
once the studio's own measured overhead is taken off. Until that overhead is
measured, L is POLL_LAG_TARGET_SECONDS.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

# The probabilities at which a prediction keeps its quantiles.
PROBS: tuple[float, ...] = (
    0.0, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5,
    0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0,
)  # fmt: skip
P_LOW, P_HIGH = 0.02, 0.98  # the window polled at most L apart
MIN_INTERVAL = 1.0  # never two status requests for a job closer than this
TAIL_GROWTH = 1.5
TAIL_CAP = 30.0
# Until a provider, model and resolution has this many finished jobs, its
# prediction leans on the provider page's figure (the prior), less with each job.
MIN_JOBS = 10
# The prior: the page's real-time factor as the median, spread +/-30 % at
# p2.5-p97.5 (log-normal), as no page states a spread.
PRIOR_SPREAD = 0.3
# This many finished jobs in a row beyond the learnt p10-p90 mean the provider
# changed speed (follow_shift).
SHIFT_JOBS = 5
Z_975 = 1.959964
# A job's overhead after its poll (poll saw it -> video archived) is kept at
# these probabilities: the middles of ten equal shares, so each stands for a
# tenth of the jobs.
OVERHEAD_PROBS: tuple[float, ...] = tuple((k + 0.5) / 10 for k in range(10))
# The share of jobs inside the window that must be seen within the aim. The
# 2 % before it wait for the first poll and the 2 % after it for the tail's
# longer intervals: counted as late, 99 % of the 96 % in the window bring the
# whole to 95 %.
IN_WINDOW_SHARE = 0.99
# The matched lag never goes below this: with a slow archive (a long download)
# calls would grow faster than the latency shrinks, and the download is the
# archive's to speed up, not the poller's.
MIN_MATCHED_LAG = 2.0


@dataclass(frozen=True)
class Prediction:
    """The distribution of (finish - submit) / billed seconds: quantiles at PROBS."""

    quantiles: tuple[float, ...]
    samples: int = 0  # finished jobs it was learnt from (0: the prior alone)

    def ratio(self, p: float) -> float:
        """r(p), linear between the stored quantiles."""
        p = min(1.0, max(0.0, p))
        i = bisect_left(PROBS, p)
        if PROBS[i] == p:
            return self.quantiles[i]
        lo, hi = PROBS[i - 1], PROBS[i]
        w = (p - lo) / (hi - lo)
        return self.quantiles[i - 1] * (1 - w) + self.quantiles[i] * w

    def cdf(self, r: float) -> float:
        q = self.quantiles
        if r <= q[0]:
            return 0.0
        if r >= q[-1]:
            return 1.0
        i = bisect_left(q, r)  # q[i-1] < r <= q[i]
        while i < len(q) - 1 and q[i] == q[i - 1]:
            i += 1
        lo, hi = q[i - 1], q[i]
        w = (r - lo) / (hi - lo) if hi > lo else 1.0
        return PROBS[i - 1] + w * (PROBS[i] - PROBS[i - 1])

    @property
    def median(self) -> float:
        return self.ratio(0.5)


def _normal_quantile(p: float) -> float:
    """The standard normal's quantile (Acklam's rational approximation, ~1e-9)."""
    a = (-39.6968302866538, 220.946098424521, -275.928510446969,
         138.357751867269, -30.6647980661472, 2.50662827745924)  # fmt: skip
    b = (-54.4760987982241, 161.585836858041, -155.698979859887,
         66.8013118877197, -13.2806815528857)  # fmt: skip
    c = (-0.00778489400243029, -0.322396458041136, -2.40075827716184,
         -2.54973253934373, 4.37466414146497, 2.93816398269878)  # fmt: skip
    d = (0.00778469570904146, 0.32246712907004, 2.445134137142996, 3.754408661907416)
    if p < 0.02425:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    if p > 1 - 0.02425:
        return -_normal_quantile(1 - p)
    q = p - 0.5
    r = q * q
    return (
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    )


def quantiles_at(values: Sequence[float], probs: Sequence[float]) -> tuple[float, ...]:
    """Nearest-rank quantiles of `values` at `probs`."""
    ordered = sorted(values)
    n = len(ordered)
    return tuple(ordered[min(n - 1, max(0, math.ceil(p * n) - 1))] for p in probs)


def lag_to_match(aim: float, overheads: Sequence[float], *, page_wait: float) -> float:
    """The largest lag target L for which a job finishing inside the window
    (seen by a poll uniformly within L of its finish) is shown within `aim`
    seconds IN_WINDOW_SHARE of the time, when after the poll it still takes
    one of `overheads` (equally likely) to archive and then up to `page_wait`
    (uniform) for the page to ask. `aim` is the plain poller's p95: 0.95 x its
    interval. Bounded to [MIN_MATCHED_LAG, aim]."""
    if not overheads:
        raise ValueError("no overhead measured")
    # The page's wait as five equally likely points.
    waits = [page_wait * (k + 0.5) / 5 for k in range(5)]
    slack = [aim - o - w for o in overheads for w in waits]

    def share_within(lag: float) -> float:
        return sum(min(1.0, max(0.0, s / lag)) for s in slack) / len(slack)

    lo, hi = MIN_MATCHED_LAG, max(aim, MIN_MATCHED_LAG)
    if share_within(lo) < IN_WINDOW_SHARE:
        return lo
    for _ in range(40):  # share_within falls as the lag grows
        mid = (lo + hi) / 2
        if share_within(mid) >= IN_WINDOW_SHARE:
            lo = mid
        else:
            hi = mid
    return lo


def prior(rtf: float, *, spread: float = PRIOR_SPREAD) -> Prediction:
    """The provider page's figure as a distribution: median `rtf`, log-normal."""
    sigma = math.log1p(spread) / Z_975
    # The ends stand for p0.5 and p99.5: a log-normal has no finite bounds.
    clipped = [min(max(p, 0.005), 0.995) for p in PROBS]
    return Prediction(tuple(rtf * math.exp(sigma * _normal_quantile(p)) for p in clipped))


def learn(ratios: Sequence[float], *, half_life: float) -> Prediction:
    """Quantiles of `ratios` (newest first), each weighted by its recency:
    0.5 ** (age / half_life), so a provider that slows down moves the
    prediction within about `half_life` jobs."""
    if not ratios:
        raise ValueError("nothing to learn from")
    weighted = sorted((r, 0.5 ** (age / half_life)) for age, r in enumerate(ratios))
    total = sum(w for _, w in weighted)
    # Each sample sits at the middle of its weight on the cumulative scale.
    points, cum = [], 0.0
    for r, w in weighted:
        points.append(((cum + w / 2) / total, r))
        cum += w
    quantiles = []
    for p in PROBS:
        if p <= points[0][0]:
            quantiles.append(points[0][1])
        elif p >= points[-1][0]:
            quantiles.append(points[-1][1])
        else:
            i = bisect_left([pt[0] for pt in points], p)
            (p0, r0), (p1, r1) = points[i - 1], points[i]
            quantiles.append(r0 + (r1 - r0) * (p - p0) / (p1 - p0))
    return Prediction(tuple(quantiles), samples=len(ratios))


def follow_shift(ratios: Sequence[float], *, jobs: int = SHIFT_JOBS) -> list[float]:
    """`ratios` (newest first), the older ones rescaled when the newest `jobs`
    all lie beyond the older ones' p10-p90 (a chance of 0.1 ** jobs if
    nothing changed): the provider got slower or faster as a whole, so the
    older jobs keep teaching the spread, moved to the new median. Recency
    weights alone would leave the older jobs' low end in place for a whole
    window, and every job would be polled across both."""
    recent, older = list(ratios[:jobs]), list(ratios[jobs:])
    if len(recent) < jobs or len(older) < jobs:
        return list(ratios)
    before = learn(older, half_life=len(older))
    lo, hi = before.ratio(0.1), before.ratio(0.9)
    if not (all(r > hi for r in recent) or all(r < lo for r in recent)):
        return list(ratios)
    scale = sorted(recent)[len(recent) // 2] / before.median
    return recent + [r * scale for r in older]


def blend(learnt: Prediction | None, page: Prediction) -> Prediction:
    """The prediction to use: the learnt one, mixed with the page's prior while
    fewer than MIN_JOBS jobs taught it (weight 1 - samples / MIN_JOBS)."""
    if learnt is None or learnt.samples <= 0:
        return page
    a = max(0.0, 1.0 - learnt.samples / MIN_JOBS)
    if a == 0:
        return learnt
    lo = min(learnt.quantiles[0], page.quantiles[0])
    hi = max(learnt.quantiles[-1], page.quantiles[-1])
    quantiles = []
    for p in PROBS:
        # The mixture's CDF, a * F_page + (1 - a) * F_learnt, inverted by bisection.
        x0, x1 = lo, hi
        for _ in range(50):
            mid = (x0 + x1) / 2
            if a * page.cdf(mid) + (1 - a) * learnt.cdf(mid) < p:
                x0 = mid
            else:
                x1 = mid
        quantiles.append(x1 if p > 0 else lo)
    return Prediction(tuple(quantiles), samples=learnt.samples)


@dataclass(frozen=True)
class Schedule:
    """Poll times in seconds after submission, for one job."""

    first: float
    step: float  # between polls in the window (<= the lag target)
    window_end: float
    tail_cap: float

    @classmethod
    def for_job(
        cls, prediction: Prediction, *, seconds: float, lag: float, webhooks: bool = False
    ) -> Schedule:
        """`webhooks`: the provider calls back when the job ends, so polling is
        only the safety net for a lost webhook: the first poll at P_HIGH, then
        the tail. (Polling densely would also hold the webhook back: a status
        answer stays fresh for 5 s, and a webhook within them waits them out.)"""
        seconds = max(seconds, 1.0)
        lag = max(lag, MIN_INTERVAL)
        low = P_HIGH if webhooks else P_LOW
        first = max(MIN_INTERVAL, prediction.ratio(low) * seconds)
        end = max(first, prediction.ratio(P_HIGH) * seconds)
        polls = math.ceil((end - first) / lag)
        step = (end - first) / polls if polls else lag
        cap = min(TAIL_CAP, max(lag, 0.1 * prediction.median * seconds))
        return cls(first=first, step=max(step, MIN_INTERVAL), window_end=end, tail_cap=cap)

    def times(self, until: float) -> list[float]:
        """Every poll time up to `until` (for tests and the bench)."""
        out, t = [], 0.0
        while True:
            t = self.next_after(t)
            if t > until:
                return out
            out.append(t)

    def next_after(self, elapsed: float) -> float:
        """The first poll time later than `elapsed` (+ MIN_INTERVAL / 2: a poll
        that ran a little late does not make the next one come at once)."""
        after = elapsed + MIN_INTERVAL / 2
        if after <= self.first:
            return self.first
        if after <= self.window_end:
            k = math.ceil((after - self.first) / self.step - 1e-9)
            return min(self.first + k * self.step, self.window_end)
        # The tail: intervals grow from the lag target up to the cap.
        t, interval = self.window_end, min(self.step * TAIL_GROWTH, self.tail_cap)
        while t + interval < after and interval < self.tail_cap:
            t += interval
            interval = min(interval * TAIL_GROWTH, self.tail_cap)
        if t + interval >= after:
            return t + interval
        return t + interval * math.ceil((after - t) / interval)
