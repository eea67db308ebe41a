"""The sandbox's realistic clock: seeded, spread as configured, outliers, and a
JoyPix task that waits "submitted" in the queue before it is "processing"."""

from __future__ import annotations

import statistics

import pytest

from jobs.providers.sandbox.clock import RenderClock
from tests.providers.test_sandbox import (  # noqa: F401 (fixtures)
    RIGHT_SECONDS,
    files,
    joypix_task,
    make_sandbox,
    poll,
    submit_joypix,
)


def quantile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[round(p * (len(ordered) - 1))]


def test_a_draw_is_repeatable_from_the_seed_and_the_task_number():
    clock = RenderClock(spread=0.3, queue_seconds=2, outliers=0.05, seed=7)
    again = RenderClock(spread=0.3, queue_seconds=2, outliers=0.05, seed=7)
    assert [clock.draw(n) for n in range(50)] == [again.draw(n) for n in range(50)]
    other = RenderClock(spread=0.3, queue_seconds=2, outliers=0.05, seed=8)
    assert [clock.draw(n) for n in range(50)] != [other.draw(n) for n in range(50)]


@pytest.mark.parametrize("spread", [0.1, 0.3])
def test_the_factor_spreads_as_configured_with_outliers_three_times_the_median(spread):
    clock = RenderClock(spread=spread, outliers=0.02, seed=3)
    draws = [clock.draw(n) for n in range(4000)]
    factors = [d.factor for d in draws if not d.outlier]
    assert statistics.median(factors) == pytest.approx(1.0, abs=0.02)
    assert quantile(factors, 0.975) == pytest.approx(1 + spread, rel=0.03)
    assert quantile(factors, 0.025) == pytest.approx(1 / (1 + spread), rel=0.03)
    slow = [d for d in draws if d.outlier]
    assert 0.01 < len(slow) / len(draws) < 0.03
    assert {d.factor for d in slow} == {3.0}


def test_queue_waits_are_drawn_around_their_mean():
    clock = RenderClock(spread=0, queue_seconds=2, seed=1)
    waits = [clock.draw(n).queue_wait for n in range(2000)]
    assert 0 <= min(waits) and max(waits) <= 4
    assert statistics.mean(waits) == pytest.approx(2, rel=0.05)


def test_sandbox_clock_json_is_checked():
    assert RenderClock.from_json("") is None
    clock = RenderClock.from_json('{"spread": 0.1, "rtf_by_resolution": {"720p": 25}}')
    assert clock.spread == 0.1 and clock.rtf("720p", 15) == 25 and clock.rtf("480p", 15) == 15
    with pytest.raises(ValueError, match="unknown"):
        RenderClock.from_json('{"sprad": 0.1}')
    with pytest.raises(ValueError, match="spread"):
        RenderClock.from_json('{"spread": 2}')


def test_a_joypix_task_waits_submitted_then_processes_for_its_drawn_time(make_sandbox, files):  # noqa: F811
    clock = RenderClock(spread=0.3, queue_seconds=0.4, seed=11, rtf_by_resolution={"720p": 0.5})
    sandbox = make_sandbox(rtf=0.01, min_delay=0, clock=clock)
    task_id = submit_joypix(sandbox, files, resolution="720p")
    answer, seen = poll(lambda: joypix_task(sandbox, task_id), timeout=30)
    assert answer["status"] == "completed"
    assert seen[0] == "submitted" and "processing" in seen
    task = sandbox.tasks[task_id]
    draw = clock.draw(0)
    assert task.draw == draw
    # Queued for its draw (the inputs are fetched after it), then processing for
    # the longer clip x the 720p rtf x the factor.
    assert task.started_at - task.created_at >= draw.queue_wait
    expected = RIGHT_SECONDS * 0.5 * draw.factor
    assert task.completed_at - task.started_at == pytest.approx(expected, abs=0.25)
