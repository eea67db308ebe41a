"""Polling that learns: the schedule's bounds (pure arithmetic), a cold start
on the provider page's figure, a provider that slows down moving the schedule
within a few jobs, and a finished job teaching the studio its render time."""

from __future__ import annotations

import random
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobState, RenderTimes
from jobs.pipeline import lifecycle
from jobs.pipeline.render_times import (
    finish_window,
    lag_target,
    render_prediction,
    render_schedule,
    render_times_forget,
    render_times_learn,
    render_times_restart,
)
from jobs.pipeline.schedule import (
    MIN_INTERVAL,
    MIN_MATCHED_LAG,
    P_HIGH,
    P_LOW,
    TAIL_CAP,
    Prediction,
    Schedule,
    blend,
    follow_shift,
    lag_to_match,
    learn,
    prior,
)
from jobs.providers.base import TaskStatus
from tests.factories import make_job

# --- the schedule's bounds -------------------------------------------------------------


def detection_lag(schedule: Schedule, finish: float) -> float:
    t = schedule.next_after(-MIN_INTERVAL)  # the first poll
    while t < finish:
        t = schedule.next_after(t)
    return t - finish


@pytest.mark.parametrize("spread", [0.1, 0.3])
@pytest.mark.parametrize("lag", [2.0, 3.0, 5.0])
@pytest.mark.parametrize("seconds", [1.0, 5.0, 30.0, 120.0])
def test_every_job_finishing_in_the_window_is_seen_within_the_lag_target(spread, lag, seconds):
    prediction = prior(15.0, spread=spread)
    schedule = Schedule.for_job(prediction, seconds=seconds, lag=lag)
    lo, hi = prediction.ratio(P_LOW) * seconds, prediction.ratio(P_HIGH) * seconds
    assert schedule.first == pytest.approx(max(MIN_INTERVAL, lo))
    polls = schedule.times(until=hi + 1e-6)
    assert polls[0] == schedule.first and polls[-1] == pytest.approx(hi)
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert all(MIN_INTERVAL - 1e-9 <= g <= lag + 1e-9 for g in gaps)
    rng = random.Random(1)
    for _ in range(200):
        finish = rng.uniform(schedule.first, hi)
        assert detection_lag(schedule, finish) <= lag + 1e-9


def test_polls_grow_past_the_window_up_to_the_cap_and_never_stop():
    schedule = Schedule.for_job(prior(15.0, spread=0.1), seconds=60, lag=3)
    late = schedule.times(until=schedule.window_end + 3600)
    tail = [t for t in late if t > schedule.window_end]
    gaps = [b - a for a, b in zip(tail, tail[1:], strict=False)]
    assert all(b >= a - 1e-6 for a, b in zip(gaps, gaps[1:], strict=False))  # growing...
    assert gaps[0] > 3 and schedule.tail_cap <= TAIL_CAP  # ...from the lag target...
    assert max(gaps) == pytest.approx(schedule.tail_cap)  # ...to the cap
    assert len(tail) > 3600 / TAIL_CAP - 5  # and on for as long as the job runs


def test_a_poll_that_ran_late_does_not_make_the_next_come_at_once():
    schedule = Schedule.for_job(prior(15.0, spread=0.3), seconds=10, lag=3)
    for elapsed in [schedule.first + k * 0.37 for k in range(60)]:
        assert schedule.next_after(elapsed) - elapsed >= MIN_INTERVAL / 2


def test_a_tight_spread_takes_a_fraction_of_a_5_s_pollers_calls():
    # JoyPix at 480p, 6 s of audio: ~90 s; a 5 s poller asks ~18 times.
    schedule = Schedule.for_job(prior(15.0, spread=0.1), seconds=6, lag=3)
    in_window = schedule.times(until=schedule.window_end + 1e-6)
    assert len(in_window) <= 8  # (window / lag) + 1


# --- the lag target that matches a 5 s poller ------------------------------------------


def shown_p95(schedule: Schedule, prediction: Prediction, *, seconds, overheads, page_wait, n):
    """p95 of "finished -> card shows it" over `n` jobs drawn from `prediction`:
    the schedule's detection lag, one of `overheads`, then the page's wait."""
    rng = random.Random(7)
    shown = sorted(
        detection_lag(schedule, prediction.ratio(rng.random()) * seconds)
        + rng.choice(overheads)
        + rng.uniform(0, page_wait)
        for _ in range(n)
    )
    return shown[int(0.95 * n) - 1]


def test_the_matched_lag_leaves_the_pollers_p95_less_the_archive_and_the_page():
    # Nothing after the poll: the lag is the poller's p95 itself.
    assert lag_to_match(4.75, [0.0] * 10, page_wait=0.0) == pytest.approx(4.75)
    # 0.6 s to archive and the page's 0.5 s: about 4.75 - 0.6 - 0.25, over 99 %.
    lag = lag_to_match(4.75, [0.6] * 10, page_wait=0.5)
    assert 3.8 < lag < 4.0
    rng = random.Random(3)
    within = sum(rng.uniform(0, lag) + 0.6 + rng.uniform(0, 0.5) <= 4.75 for _ in range(20_000))
    assert within / 20_000 == pytest.approx(0.99, abs=0.005)
    # A slower archive leaves less; a very slow one never makes the polls dense.
    assert lag_to_match(4.75, [1.5] * 10, page_wait=0.5) < lag
    assert lag_to_match(4.75, [10.0] * 10, page_wait=0.5) == MIN_MATCHED_LAG


@pytest.mark.parametrize("spread", [0.1, 0.3])
@pytest.mark.parametrize("rtf", [15.0, 25.0])
def test_the_matched_lag_shows_jobs_no_later_than_a_5_s_poller_with_fewer_calls(spread, rtf):
    prediction, seconds = prior(rtf, spread=spread), 5.5
    overheads = [0.45, 0.5, 0.5, 0.55, 0.55, 0.6, 0.6, 0.65, 0.7, 0.9]  # poll saw it -> archived
    lag = lag_to_match(0.95 * 5, overheads, page_wait=0.5)
    matched = Schedule.for_job(prediction, seconds=seconds, lag=lag)
    fixed = Schedule.for_job(prediction, seconds=seconds, lag=3.0)
    # A plain 5 s poller (jobs finishing at a random phase of it) sees 95 % within 4.75 s.
    assert shown_p95(matched, prediction, seconds=seconds, overheads=overheads,
                     page_wait=0.5, n=4000) <= 4.75  # fmt: skip
    end = fixed.window_end + 1e-6
    assert len(matched.times(until=end)) < len(fixed.times(until=end))


# --- the prediction: cold start, learning, blending -------------------------------------


def test_the_prior_is_the_pages_figure_spread_as_assumed():
    p = prior(25.0, spread=0.3)
    assert p.median == pytest.approx(25.0)
    assert p.ratio(0.025) < 25 < p.ratio(0.975)
    assert p.ratio(0.975) == pytest.approx(25 * 1.3, rel=0.01)


def test_learning_weighs_recent_jobs_more():
    old, new = [15.0] * 30, [30.0] * 12
    learnt = learn(new + old, half_life=10)  # newest first
    assert learnt.median > 25
    assert learn(old + new, half_life=10).median == pytest.approx(15.0)


def test_blend_leans_on_the_page_until_enough_jobs():
    page = prior(15.0)
    few = Prediction(learn([30.0] * 3, half_life=10).quantiles, samples=3)
    blended = blend(few, page)
    assert page.median < blended.median < 30
    many = Prediction(few.quantiles, samples=10)
    assert blend(many, page) == many
    assert blend(None, page) == page


@pytest.fixture
def funded_alice(alice):
    credits_grant(user=alice, pool="studio", amount=10_000, key="grant:alice")
    return alice


@pytest.fixture
def joypix_for_real(settings):
    """JoyPix is the real provider (not the sandbox), so the page's figures apply."""
    settings.JOYPIX_BASE_URL = "https://openapi.joypix.example"
    settings.JOYPIX_API_KEY = "sk-test"


def finished(owner, *, ratio: float, seconds: float = 6.0, ago: float = 0.0) -> Job:
    now = timezone.now() - timedelta(seconds=ago)
    job = make_job(
        owner,
        state=JobState.ARCHIVING,
        submitted_after=timedelta(0),
        created=now,
        input_seconds=seconds,
        provider_seconds=ratio * seconds,
    )
    render_times_learn(job)
    return job


@pytest.mark.django_db
def test_a_cold_start_uses_the_providers_page_figures(joypix_for_real, alice, funded_alice):
    job = make_job(alice, state=JobState.PROCESSING, input_seconds=6.0)
    job.resolution = "720p"
    assert not RenderTimes.objects.exists()
    # JoyPix's page: ~25 s per second of video at 720p.
    assert lifecycle.expected_processing(job) == timedelta(seconds=6 * 25)
    schedule = render_schedule(job)
    assert schedule.first == pytest.approx(prior(25.0).ratio(P_LOW) * 6)
    job.resolution = "480p"
    assert lifecycle.expected_processing(job) == timedelta(seconds=6 * 15)


@pytest.mark.django_db
def test_a_provider_that_slows_down_moves_the_schedule_within_five_jobs(
    joypix_for_real, alice, funded_alice
):
    for i in range(40):
        finished(alice, ratio=15.0 * random.Random(i).uniform(0.95, 1.05), ago=1000 - i)
    probe = make_job(alice, state=JobState.PROCESSING, input_seconds=6.0)
    before = render_schedule(probe)
    assert before.window_end < 6 * 30  # a job twice as slow would be in the tail
    assert lifecycle.expected_processing(probe).total_seconds() == pytest.approx(90, rel=0.05)
    # The provider now takes twice as long.
    moved_at = None
    for n in range(1, 11):
        finished(alice, ratio=30.0 * random.Random(n).uniform(0.95, 1.05), ago=100 - n)
        schedule = render_schedule(probe)
        if moved_at is None and schedule.first > before.window_end:
            moved_at = n
            # The whole window moved: the slow jobs are now polled within the target...
            assert schedule.window_end >= 6 * 30 * 1.04
            # ...and no longer across the old speed as well.
            assert schedule.window_end - schedule.first < 3 * (before.window_end - before.first)
    assert moved_at == 5  # SHIFT_JOBS
    assert lifecycle.expected_processing(probe).total_seconds() == pytest.approx(180, rel=0.05)


def test_one_slow_outlier_does_not_move_the_prediction():
    ratios = [15.0 * random.Random(i).uniform(0.95, 1.05) for i in range(40)]
    assert learn(follow_shift([45.0, *ratios]), half_life=10).median == pytest.approx(
        learn(ratios, half_life=10).median, rel=0.02
    )


@pytest.mark.django_db
def test_a_finished_job_teaches_its_render_time(alice, funded_alice):
    now = timezone.now()
    job = make_job(
        alice,
        state=JobState.PROCESSING,
        input_seconds=6.0,
        submitted_after=timedelta(0),
        created=now - timedelta(seconds=100),
        provider_pending_at=now - timedelta(seconds=4),
        next_poll_at=now,
    )
    lifecycle.job_status_apply(job, result=TaskStatus(state="completed", video_url="https://x/v"))
    job.refresh_from_db()
    assert job.state == JobState.ARCHIVING
    # Between the last "not done" (96 s) and this answer (100 s).
    assert job.provider_seconds == pytest.approx(98, abs=0.5)
    row = RenderTimes.objects.get()
    assert (row.provider, row.provider_model, row.resolution, row.samples) == (
        "joypix",
        "motion-2-dialog",
        "480p",
        1,
    )
    assert render_prediction(job).samples == 1


@pytest.mark.django_db
def test_a_reported_execution_time_narrows_the_finish(alice, funded_alice):
    now = timezone.now()
    job = make_job(
        alice,
        mode="dialog",
        provider="lipsync_studio",
        state=JobState.PROCESSING,
        input_seconds=6.0,
        submitted_after=timedelta(0),
        created=now - timedelta(seconds=100),
        provider_pending_at=now - timedelta(seconds=30),
        next_poll_at=now,
    )
    status = TaskStatus(state="completed", video_url="https://x/v", raw={"executionTime": 90_000})
    lifecycle.job_status_apply(job, result=status)
    job.refresh_from_db()
    assert job.provider_seconds == pytest.approx(95, abs=0.5)  # between 90 s and 100 s


@pytest.mark.django_db
def test_a_not_done_answer_is_remembered_and_the_next_poll_follows_the_schedule(
    alice, funded_alice
):
    now = timezone.now()
    job = make_job(
        alice,
        state=JobState.PROCESSING,
        input_seconds=6.0,
        submitted_after=timedelta(0),
        created=now - timedelta(seconds=1),
        next_poll_at=now,
    )
    lifecycle.job_status_apply(job, result=TaskStatus(state="processing"))
    job.refresh_from_db()
    assert job.provider_pending_at is not None
    expected = render_schedule(job).next_after((now - job.submitted_at).total_seconds())
    due = (job.next_poll_at - job.submitted_at).total_seconds()
    assert due == pytest.approx(expected, abs=0.5)


def test_with_webhooks_polling_is_only_the_safety_net():
    prediction = prior(15.0, spread=0.3)
    polled = Schedule.for_job(prediction, seconds=6, lag=3)
    called_back = Schedule.for_job(prediction, seconds=6, lag=3, webhooks=True)
    assert called_back.first == pytest.approx(prediction.ratio(P_HIGH) * 6)
    window = polled.times(until=polled.window_end + 1e-6)
    assert called_back.times(until=polled.window_end + 1e-6) == [called_back.first]
    assert len(window) > 5


@pytest.mark.django_db
def test_a_lipsync_studio_job_with_webhooks_is_polled_late(settings, alice, funded_alice):
    job = make_job(alice, provider="lipsync_studio", state=JobState.PROCESSING, input_seconds=6.0)
    settings.WEBHOOKS_ALLOW_HTTP = False
    settings.PUBLIC_BASE_URL = "http://studio.example"
    polled = render_schedule(job)
    settings.WEBHOOKS_ALLOW_HTTP = True
    assert render_schedule(job).first > polled.first


# --- claiming due polls -------------------------------------------------------------------


@pytest.mark.django_db
def test_due_polls_are_claimed_at_once_and_never_twice(
    alice, funded_alice, django_assert_max_num_queries
):
    """The loop claims a whole batch with one UPDATE (thousands due at once
    must not cost a round trip each), oldest due first, and a job another
    claim took meanwhile (a webhook's job_poll_now) is not among them."""
    now = timezone.now()
    due = [
        make_job(
            alice,
            state=JobState.PROCESSING,
            submitted_after=timedelta(0),
            created=now - timedelta(seconds=60),
            next_poll_at=now - timedelta(seconds=30 - i),
        )
        for i in range(6)
    ]
    later = make_job(
        alice,
        state=JobState.PROCESSING,
        submitted_after=timedelta(0),
        next_poll_at=now + timedelta(seconds=30),
    )
    queryset = type(Job.objects.all())
    original = queryset.update
    taken = due[1].pk

    # Another claim takes one of them between the look-up and the UPDATE.
    def claim_first(self, **kwargs):
        if "poll_count" in kwargs and not claimed_meanwhile:
            claimed_meanwhile.append(taken)
            original(
                Job.objects.filter(pk=taken),
                next_poll_at=timezone.now() + timedelta(seconds=60),
                last_polled_at=timezone.now(),
            )
        return original(self, **kwargs)

    claimed_meanwhile: list[int] = []
    with mock.patch.object(queryset, "update", claim_first):
        # The look-up, one UPDATE, the claimed rows (and the other claim's UPDATE).
        with django_assert_max_num_queries(4):
            claimed = lifecycle.polls_claim_due(limit=5)

    assert claimed_meanwhile == [taken]
    assert {job.pk for job in claimed} == {job.pk for job in due[:5]} - {taken}
    assert all(job.poll_count == 1 for job in claimed)
    # The next round takes the one left due, and nothing not yet due.
    assert [job.pk for job in lifecycle.polls_claim_due(limit=5)] == [due[5].pk]
    later.refresh_from_db()
    assert later.poll_count == 0


def archived(owner, *, after_seen: float, ratio: float = 15.0, ago: float = 0.0) -> Job:
    """A job the studio archived `after_seen` seconds after its poll saw it done."""
    job = finished(owner, ratio=ratio, ago=ago)
    seen = job.submitted_at + timedelta(seconds=job.provider_seconds)
    done = seen + timedelta(seconds=after_seen)
    Job.objects.filter(pk=job.pk).update(
        state=JobState.COMPLETED, provider_completed_at=seen, archived_at=done, finished_at=done
    )
    return job


@pytest.mark.django_db
def test_the_lag_target_is_learnt_from_the_studios_own_archive_time(
    settings, joypix_for_real, alice, funded_alice
):
    settings.POLL_LAG_TARGET_SECONDS, settings.POLL_MATCH_SECONDS = 3, 5
    render_times_forget()
    probe = make_job(
        alice, state=JobState.PROCESSING, input_seconds=6.0, submitted_after=timedelta(0)
    )
    for i in range(10):
        archived(alice, after_seen=0.6, ago=1000 - i)
    # What a job taught is stored when the next one is seen done: nine archived
    # jobs are not enough to go by, and the fixed target holds.
    assert lag_target(probe) == 3
    finished(alice, ratio=15.0, ago=900)  # its learning counts the tenth archive
    matched = lag_to_match(4.75, [0.6] * 10, page_wait=0.5)
    assert lag_target(probe) == pytest.approx(matched)
    schedule = render_schedule(probe)
    assert 3 < schedule.step <= matched + 1e-9
    # The cards' finish window (when the page asks faster) ends one lag past P_HIGH.
    start, end = finish_window(probe)
    assert (end - start).total_seconds() == pytest.approx(
        schedule.window_end - schedule.first + matched, abs=0.01
    )
    # The archive slows down (a slower store, bigger videos): the polls close up.
    for i in range(40):
        archived(alice, after_seen=2.0, ago=800 - i)
    finished(alice, ratio=15.0, ago=700)
    assert lag_target(probe) == pytest.approx(lag_to_match(4.75, [2.0] * 10, page_wait=0.5))
    assert render_schedule(probe).step < schedule.step
    # Matching switched off: the fixed target again.
    settings.POLL_MATCH_SECONDS = 0
    render_times_forget()
    assert lag_target(probe) == 3
    settings.POLL_MATCH_SECONDS = 5
    # Learning started again (the jobs now go elsewhere): the fixed target until measured anew.
    render_times_restart("joypix", why="test")
    assert lag_target(probe) == 3
