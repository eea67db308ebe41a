"""A round of the poll loop's answers: the "not done" ones are written
together (a fixed number of statements however many jobs were polled), each
job's next poll still follows its own schedule, a webhook that made a job due
earlier meanwhile keeps its time, and only jobs still processing change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobState
from jobs.pipeline import lifecycle
from jobs.pipeline.render_times import render_schedule
from jobs.providers.base import TaskStatus
from tests.factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded_alice(alice):
    credits_grant(user=alice, pool="studio", amount=100_000, key="grant:alice")
    return alice


def due_jobs(owner, count: int) -> list[Job]:
    """`count` processing jobs submitted a minute ago, due now, claimed as the loop does."""
    now = timezone.now()
    for n in range(count):
        make_job(
            owner,
            state=JobState.PROCESSING,
            input_seconds=4.0 + n % 5,
            submitted_after=timedelta(0),
            created=now - timedelta(seconds=60),
            next_poll_at=now - timedelta(seconds=1),
        )
    return lifecycle.polls_claim_due(limit=count)


def not_done(jobs: list[Job], state: str = "processing", seed: int | None = None) -> list:
    return [(job, TaskStatus(state=state, seed=seed)) for job in jobs]


def on_jobs(captured) -> int:
    """The statements on the jobs table (not the memos a process reads once)."""
    return sum('"jobs_job"' in query["sql"] for query in captured.captured_queries)


def round_queries(owner, count: int, django_assert_max_num_queries) -> tuple[int, int]:
    """The statements on jobs of two rounds of `count` "not done" answers: the first
    (every job's provider state is new: its card changes), then a second."""
    jobs = due_jobs(owner, count)
    assert len(jobs) == count
    with django_assert_max_num_queries(8) as first:
        lifecycle.polls_apply(not_done(jobs))
    pks = [job.pk for job in jobs]
    Job.objects.filter(pk__in=pks).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    jobs = lifecycle.polls_claim_due(limit=count)
    with django_assert_max_num_queries(3) as second:
        lifecycle.polls_apply(not_done(jobs))
    return on_jobs(first), on_jobs(second)


def test_a_round_of_not_done_answers_costs_the_same_statements_for_5_jobs_as_for_40(
    alice, funded_alice, django_assert_max_num_queries
):
    few = round_queries(alice, 5, django_assert_max_num_queries)
    Job.objects.all().update(next_poll_at=timezone.now() + timedelta(hours=1))  # out of the way
    many = round_queries(alice, 40, django_assert_max_num_queries)
    assert many == few
    # The first: the owners (for their card stamps), the new provider state,
    # the next polls; then the next polls alone (in one transaction each).
    assert many == (3, 1)


def test_each_job_of_a_round_is_next_polled_by_its_own_schedule(alice, funded_alice):
    jobs = due_jobs(alice, 10)
    before = timezone.now()
    lifecycle.polls_apply(not_done(jobs, seed=42))
    after = timezone.now()
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs]):
        schedule = render_schedule(job)
        # Asked between `before` and `after`: the next poll is the schedule's next
        # time after then, never the claim's lease (a minute away).
        earliest = schedule.next_after((before - job.submitted_at).total_seconds())
        latest = schedule.next_after((after - job.submitted_at).total_seconds())
        due = (job.next_poll_at - job.submitted_at).total_seconds()
        assert earliest - 1e-3 <= due <= latest + 1e-3
        assert job.provider_state == "processing"
        assert before <= job.provider_pending_at <= after
        assert before <= job.first_status_at <= after
        assert job.provider_seed == 42


def test_a_webhook_that_made_a_job_due_earlier_mid_round_keeps_its_time(alice, funded_alice):
    jobs = due_jobs(alice, 4)
    hurried = jobs[1]
    # A webhook says "poll now" while the round's requests are in flight.
    earlier = timezone.now() + timedelta(milliseconds=200)
    Job.objects.filter(pk=hurried.pk).update(next_poll_at=earlier)
    lifecycle.polls_apply(not_done(jobs))
    hurried.refresh_from_db()
    assert hurried.next_poll_at == earlier
    others = Job.objects.filter(pk__in=[j.pk for j in jobs]).exclude(pk=hurried.pk)
    assert all(job.next_poll_at > earlier for job in others)


def test_a_job_that_stopped_processing_mid_round_is_left_alone(alice, funded_alice):
    jobs = due_jobs(alice, 3)
    gone = jobs[0]
    Job.objects.filter(pk=gone.pk).update(
        state=JobState.FAILED, finished_at=timezone.now(), next_poll_at=None
    )
    lifecycle.polls_apply(not_done(jobs, state="pending"))
    gone.refresh_from_db()
    assert gone.state == JobState.FAILED
    assert gone.next_poll_at is None and gone.provider_state != "pending"
    assert (
        Job.objects.filter(pk__in=[jobs[1].pk, jobs[2].pk], provider_state="pending").count() == 2
    )


def test_only_an_answer_that_changes_the_card_moves_its_updated_at(alice, funded_alice):
    jobs = due_jobs(alice, 2)
    Job.objects.filter(pk=jobs[0].pk).update(provider_state="processing")
    jobs = [Job.objects.get(pk=job.pk) for job in jobs]
    stamps = {job.pk: job.updated_at for job in jobs}
    lifecycle.polls_apply(not_done(jobs))
    same, changed = (Job.objects.get(pk=job.pk) for job in jobs)
    assert same.updated_at == stamps[same.pk]  # still "rendering": nothing a card shows
    assert changed.updated_at > stamps[changed.pk]  # "" -> "processing": the card changes
    assert changed.provider_state == "processing"


def test_a_round_mixes_finished_and_not_done_answers(alice, funded_alice):
    jobs = due_jobs(alice, 3)
    answers = [
        (jobs[0], TaskStatus(state="completed", video_url="https://x/v.mp4")),
        (jobs[1], TaskStatus(state="processing")),
        (jobs[2], TaskStatus(state="failed", error="The model could not find a face.")),
    ]
    lifecycle.polls_apply(answers)
    states = dict(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("pk", "state"))
    assert states == {
        jobs[0].pk: JobState.ARCHIVING,
        jobs[1].pk: JobState.PROCESSING,
        jobs[2].pk: JobState.FAILED,
    }


def test_a_round_that_sees_many_jobs_finished_learns_from_all_of_them_once(
    alice, funded_alice, monkeypatch
):
    from jobs.models import RenderTimes
    from jobs.pipeline import render_times

    jobs = due_jobs(alice, 4)
    rewrites = []
    learn = render_times._learn
    monkeypatch.setattr(render_times, "_learn", lambda job: rewrites.append(job) or learn(job))
    lifecycle.polls_apply(
        [(job, TaskStatus(state="completed", video_url="https://x/v.mp4")) for job in jobs]
    )
    assert len(rewrites) == 1  # one provider, model and resolution: one rewrite
    row = RenderTimes.objects.get()
    assert row.samples == 4  # ...from all four finished jobs


def test_one_answer_that_cannot_be_applied_spoils_only_its_own_job(
    alice, funded_alice, monkeypatch, caplog
):
    """A round is one transaction, but a job whose answer fails to apply (a
    bug, a ledger refusal) is rolled back alone: the round's other jobs are
    written, and it is asked again once its claim lapses."""
    jobs = due_jobs(alice, 3)
    poisoned = jobs[1]
    real_fail = lifecycle.job_fail

    def job_fail(job, **kwargs):
        if job.pk == poisoned.pk:
            raise RuntimeError("the ledger refused")
        return real_fail(job, **kwargs)

    monkeypatch.setattr(lifecycle, "job_fail", job_fail)
    lifecycle.polls_apply(
        [
            (jobs[0], TaskStatus(state="completed", video_url="https://x/v.mp4")),
            (poisoned, TaskStatus(state="failed", error="No face.")),
            (jobs[2], TaskStatus(state="processing")),
        ]
    )
    after = {job.pk: job for job in Job.objects.filter(pk__in=[j.pk for j in jobs])}
    assert after[jobs[0].pk].state == JobState.ARCHIVING
    assert after[jobs[2].pk].provider_state == "processing"
    assert after[poisoned.pk].state == JobState.PROCESSING
    assert after[poisoned.pk].next_poll_at == poisoned.next_poll_at  # its claim: asked again
    assert "could not be applied" in caplog.text


def finished(jobs: list[Job]) -> list:
    return [
        (job, TaskStatus(state="completed", video_url=f"https://x/{job.pk}.mp4")) for job in jobs
    ]


def test_a_round_of_finished_jobs_costs_the_same_statements_for_5_jobs_as_for_40(
    alice, funded_alice, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    counts = []
    for count in (5, 40):
        Job.objects.filter(state=JobState.PROCESSING).update(
            next_poll_at=timezone.now() + timedelta(hours=1)  # the last round's: out of the way
        )
        jobs = due_jobs(alice, count)
        with django_capture_on_commit_callbacks() as callbacks:
            with django_assert_max_num_queries(20) as captured:
                lifecycle.polls_apply(finished(jobs))
        counts.append(on_jobs(captured))
        assert len(callbacks) >= count  # an archive_job task queued for each
        moved = Job.objects.filter(pk__in=[job.pk for job in jobs])
        assert all(job.state == JobState.ARCHIVING for job in moved)
        assert all(job.output_url == f"https://x/{job.pk}.mp4" for job in moved)
        assert all(job.provider_seconds and job.first_status_at for job in moved)
    assert counts[0] == counts[1]


def test_a_round_whose_finished_batch_fails_applies_them_one_by_one(
    alice, funded_alice, monkeypatch, caplog
):
    jobs = due_jobs(alice, 3)
    move = lifecycle._completed_move

    def broken(answers, *, now):
        if len(answers) == 1:  # job_status_apply's own move, one by one
            return move(answers, now=now)
        Job.objects.filter(pk=answers[0][0].pk).update(output_url="https://x/half-written")
        raise RuntimeError("the batch's UPDATE failed")

    monkeypatch.setattr(lifecycle, "_completed_move", broken)
    lifecycle.polls_apply(finished(jobs))
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]):
        assert job.state == JobState.ARCHIVING  # each by job_status_apply
        assert job.output_url == f"https://x/{job.pk}.mp4"  # the batch's write rolled back
    assert "written one by one" in caplog.text


def test_a_finished_job_that_stopped_processing_mid_round_is_left_alone(alice, funded_alice):
    jobs = due_jobs(alice, 2)
    gone = jobs[0]
    Job.objects.filter(pk=gone.pk).update(
        state=JobState.FAILED, finished_at=timezone.now(), next_poll_at=None
    )
    lifecycle.polls_apply(finished(jobs))
    states = dict(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("pk", "state"))
    assert states == {gone.pk: JobState.FAILED, jobs[1].pk: JobState.ARCHIVING}
    gone.refresh_from_db()
    assert gone.output_url == "" and gone.first_status_at is not None  # its first answer noted
