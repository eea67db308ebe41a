"""Two cluster nodes on one database and one broker share the work: every job
is submitted to the provider once, one poll loop runs at a time (its lease),
and when the node running the loop is SIGKILLed mid-run the other finishes
every job within a stated time.

That time: the dead loop's lease lapses POLL_LOOP_SECONDS + 30 s after it was
taken, then the "Poll providers" schedule (every minute, looked at by
django-q's scheduler every 30 s) starts a loop on the survivor, so at most
POLL_LOOP_SECONDS + 30 + 90 s, plus the jobs' own remaining time. Here
POLL_LOOP_SECONDS is 3: RECOVERY = 125 s (with the default 50 s: ~3 min)."""

import re
import time
from datetime import datetime, timedelta

import pytest
from django_q.models import Task

from jobs.credits.ledger import credits_balances
from jobs.models import Job, Pool
from tests.integration.conftest import sandbox_stats, schedules_restore, submit_api
from tests.pipeline_support import ledger_check

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JOBS = 6
POLL_LOOP_SECONDS = 3
RECOVERY = POLL_LOOP_SECONDS + 30 + 90
HANDOVER = timedelta(seconds=0.5)


def running_poll_loop(log: str) -> bool:
    """The node's log shows a poll_due task started over a second ago and not
    yet processed: the loop holding the lease (one that finds the lease taken
    returns in milliseconds)."""
    ended = set(re.findall(r"Processed 'jobs\.tasks\.poll_due' \((\S+)\)", log))
    for when, name in re.findall(
        r"^(\S+ \S+) .*processing (\S+) 'jobs\.tasks\.poll_due'", log, re.M
    ):
        started = datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f")
        if name not in ended and (datetime.now() - started).total_seconds() > 1:
            return True
    return False


def taken(log: str, func: str = r"[\w.]+") -> int:
    """Tasks the node took from the broker and started."""
    return len(re.findall(rf"processing \S+ '{func}'", log))


def test_two_nodes_share_the_work_and_one_finishes_when_the_other_is_killed(
    make_studio, member, media
):
    schedules_restore()
    studio = make_studio(POLL_LOOP_SECONDS=str(POLL_LOOP_SECONDS), JOB_ARCHIVE_LEASE_SECONDS="5")
    # Renders slow enough (4 s of processing a second of audio) that the
    # kill comes while every job is at the provider.
    studio.start_sandbox(rtf=4, min_delay=1)
    studio.start_web()
    nodes = [studio.start_node("node1"), studio.start_node("node2")]

    for n in range(JOBS):
        provider = "joypix" if n % 2 else "lipsync_studio"
        route = "/v1/lip-sync/motion-2" if n % 2 else "/api/v1/lipsync-image"
        files = (
            {"image_url": media["photo.png"], "audio_url": media["left.mp3"]}
            if n % 2
            else {"image": media["photo.png"], "audio": media["left.mp3"]}
        )
        submit_api(member, route, files, provider=provider)
    jobs = Job.objects.all()
    studio.wait_until(
        lambda: not jobs.filter(state__in=["queued", "submitting"]).exists(),
        timeout=60,
        what="every job at the provider",
    )
    # SIGKILL the node whose worker runs the poll loop now: the worse case,
    # its lease outlives it.
    holder = studio.wait_until(
        lambda: next((p for p in nodes if running_poll_loop(p.log())), None),
        timeout=30,
        what="a node running the poll loop",
    )
    survivor = next(p for p in nodes if p is not holder)
    live_at_kill = jobs.exclude(state__in=["completed", "failed"]).count()
    studio.kill(holder.name)
    killed_at = time.monotonic()
    assert live_at_kill > 0, "every job ended before the kill; slow the sandbox down"

    studio.wait_until(
        lambda: not jobs.exclude(state__in=["completed", "failed"]).exists(),
        timeout=RECOVERY + 30,
        what=f"{survivor.name} finishing every job after {holder.name} was killed",
    )
    recovered = time.monotonic() - killed_at
    assert recovered <= RECOVERY + 10, recovered
    assert set(jobs.values_list("state", flat=True)) == {"completed"}

    # Each job went to the provider once.
    stats = sandbox_stats(studio)
    assert sum(stats["submissions"].values()) == JOBS, stats
    assert stats["tasks"] == {"completed": JOBS}, stats
    assert len(set(jobs.values_list("provider_task_id", flat=True))) == JOBS
    # Credits settled, the ledger consistent.
    assert credits_balances(user=member.user)[Pool.API].held == 0
    assert "Ledger OK" in ledger_check()

    # Both nodes took work from the one broker; no submit task was taken twice.
    logs = {p.name: p.log() for p in nodes}
    assert all(taken(log) for log in logs.values()), studio.tails()
    assert sum(taken(log, r"jobs\.tasks\.submit_job") for log in logs.values()) == JOBS

    # One poll loop at a time: the loops that polled (rounds > 0) never overlap.
    # (A task's start is stamped just before it takes the lease and its stop
    # just after it let go and kicked the next, so a hand-over may look a few
    # milliseconds early; two loops polling at once would overlap by seconds.)
    # The survivor's loop ends (and its monitor records it) a moment after
    # the last archive; the killed node's loop left no record.
    def polled():
        loops = Task.objects.filter(func="jobs.tasks.poll_due", success=True)
        return sorted((t.started, t.stopped) for t in loops if t.result)

    polled = studio.wait_until(polled, timeout=30, what="a poll loop that polled, recorded")
    for (_, stop), (start, _) in zip(polled, polled[1:], strict=False):
        assert stop - start < HANDOVER, polled
    print(
        f"\n{live_at_kill} live jobs at the kill; {survivor.name} finished them in "
        f"{recovered:.1f} s (stated: {RECOVERY} s); tasks taken: "
        + ", ".join(f"{name} {taken(log)}" for name, log in logs.items())
    )
