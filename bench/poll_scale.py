"""10,000 jobs in flight on one cluster node: what the poll loop costs.

    .venv/bin/python bench/poll_scale.py [--jobs 10000] [--spread 0.1] [--timeout 600]

What runs:

- the sandbox in a child process (so this process's CPU is the studio's), its
  tasks put in directly rather than submitted and rendered (10,000 renders
  would measure the sandbox, not the poll loop): each task is "processing"
  from its submission and turns "completed" at the time the sandbox's
  realistic clock (jobs/providers/sandbox/clock.py, rtf 15, the given spread)
  draws for it, answered over HTTP by the sandbox's own status route;
- the studio's jobs made in bulk in the same state a submission leaves them
  (processing, the provider's task id, the first poll the learnt schedule
  gives), after 40 earlier jobs from the same clock taught the render times;
- one poll loop (jobs.pipeline.poller.poll_due, back to back, as the lease
  keeps it on a cluster) in a thread. Archiving is left out (its task is not
  run): the jobs stop at "archiving", the moment a poll saw them completed.

Prints every 10 s: this process's CPU (user + system) as a share of one core,
the jobs still processing and the status requests made; then the CPU while
10,000 jobs were in flight and none was due, status requests per job, and
"provider finished -> poll saw it" (median, p95). A script, not a test.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import resource
import secrets
import shlex
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import django_start  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from jobs.providers.sandbox import SandboxConfig, SandboxServer, Task  # noqa: E402
from jobs.providers.sandbox.clock import RenderClock  # noqa: E402

RTF = 15.0
MODEL = "motion-2-dialog"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=0.1)
    parser.add_argument("--seconds", default="3-8", help="clip lengths, MIN-MAX (default 3-8)")
    parser.add_argument(
        "--submit-over", type=float, default=10.0, help="jobs submitted over this many seconds"
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=90.0,
        help="the first job is submitted this long after the start, so the set-up (the bulk "
        "insert) is over and the loop first idles with every job in flight (default 90 s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    return parser.parse_args()


def plan(args) -> list[tuple[str, float, float, float]]:
    """(task id, seconds of video, submitted at, done at) per job, epoch times."""
    lo, _, hi = args.seconds.partition("-")
    rng = random.Random(args.seed)
    clock = RenderClock(spread=args.spread, seed=args.seed, rtf_by_resolution={"480p": RTF})
    start = time.time() + args.lead  # set-up and the bulk insert come first
    out = []
    for n in range(args.jobs):
        seconds = round(rng.uniform(float(lo), float(hi or lo)), 2)
        submitted = start + args.submit_over * n / args.jobs
        took = max(0.5, clock.draw(n).processing(seconds=seconds, rtf=RTF))
        out.append((f"task_{n:024x}", seconds, submitted, submitted + took))
    return out


# --- the sandbox, in a child process ------------------------------------------------------


def sandbox_child(conn, api_key: str, tasks: list[tuple[str, float, float, float]]) -> None:
    server = SandboxServer(SandboxConfig(api_key=api_key, rtf=0)).start()
    with server._lock:  # a bench's liberty: tasks put in as if submitted and fetched
        for task_id, _seconds, submitted, _done in tasks:
            server._tasks[task_id] = Task(
                id=task_id,
                provider="joypix",
                model=MODEL,
                inputs={},
                resolution="480p",
                prompt="",
                seed=-1,
                webhook="",
                echo={},
                output_name=f"{secrets.token_hex(16)}.mp4",
                status="processing",
                created_at=submitted,
                started_at=submitted,
            )
    stop = threading.Event()

    def finisher():
        for task_id, _s, _sub, done in sorted(tasks, key=lambda t: t[3]):
            if stop.wait(max(0.0, done - time.time())):
                return
            with server._lock:
                task = server._tasks[task_id]
                task.status, task.completed_at = "completed", done

    threading.Thread(target=finisher, daemon=True).start()
    conn.send(server.url)
    conn.recv()  # "stop"
    stop.set()
    statuses = sum(1 for c in server.calls if c.path.startswith("/v1/tasks/"))
    conn.send({"status_calls": statuses, "calls": len(server.calls)})
    server.stop()


# --- the studio -------------------------------------------------------------------------


def make_jobs(tasks, *, api_key: str) -> None:
    from django.contrib.auth import get_user_model

    from jobs.models import Job, JobState
    from jobs.pipeline.render_times import render_schedule, render_times_learn

    owner = get_user_model().objects.create_user("scale", "scale@example.com", "x" * 20)
    # 40 earlier jobs from the same clock (another seed): a studio that has run.
    clock = RenderClock(spread=ARGS.spread, seed=ARGS.seed + 1000)
    rng = random.Random(ARGS.seed + 1000)
    lo, _, hi = ARGS.seconds.partition("-")
    earlier = datetime.now(UTC) - timedelta(hours=2)
    history = []
    for n in range(40):
        s = round(rng.uniform(float(lo), float(hi or lo)), 2)
        took = max(0.5, clock.draw(n).processing(seconds=s, rtf=RTF))
        at = earlier + timedelta(seconds=30 * n)
        history.append(
            Job(
                owner=owner,
                mode="dialog",
                provider="joypix",
                provider_model=MODEL,
                resolution="480p",
                state=JobState.COMPLETED,
                input_seconds=s,
                submitted_at=at,
                provider_seconds=took,
                finished_at=at + timedelta(seconds=took),
            )
        )
    Job.objects.bulk_create(history)
    render_times_learn(history[-1])
    rows = []
    for task_id, seconds, submitted, _done in tasks:
        at = datetime.fromtimestamp(submitted, UTC)
        job = Job(
            owner=owner,
            mode="dialog",
            provider="joypix",
            provider_model=MODEL,
            resolution="480p",
            state=JobState.PROCESSING,
            provider_task_id=task_id,
            input_seconds=seconds,
            submitted_at=at,
            state_changed_at=at,
        )
        job.next_poll_at = at + timedelta(seconds=render_schedule(job).first)
        rows.append(job)
    Job.objects.bulk_create(rows, batch_size=2000)


class Cluster:
    def __init__(self):
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from django.db import close_old_connections

        from jobs.pipeline import poller

        while not self.stopping.is_set():
            poller.poll_due(max_seconds=50)
            close_old_connections()
            self.stopping.wait(0.5)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


ARGS: argparse.Namespace


class Sandbox:
    """The sandbox in a child process (so this process's CPU is the studio's),
    answering for `tasks`."""

    def __init__(self, tasks: list[tuple[str, float, float, float]]):
        self.api_key = secrets.token_urlsafe(24)
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=sandbox_child, args=(child, self.api_key, tasks), daemon=True
        )
        self.proc.start()
        self.url = self.conn.recv()

    def stop(self) -> dict:
        """Stop it; returns what it counted (status_calls)."""
        self.conn.send("stop")
        stats = self.conn.recv()
        self.proc.join(timeout=30)
        return stats


def studio_start(*, data_dir: Path, sandbox: Sandbox, database_url: str | None) -> None:
    """The studio's Django on `data_dir`, every provider at `sandbox`. The
    archive is not these benches' subject: its task is not run, and the
    loop's take-over of archives (after 30 s) does nothing."""
    django_start(
        data_dir=data_dir,
        database_url=database_url,
        SANDBOX_URL=sandbox.url,
        SANDBOX_API_KEY=sandbox.api_key,
        SANDBOX_RTF=repr(RTF),
        FETCH_ALLOW_LOOPBACK="1",
        Q_SYNC="1",
    )
    from jobs.pipeline import lifecycle

    lifecycle.enqueue = lambda *a, **k: None
    lifecycle.job_archive = lambda pk: None


def main() -> None:
    global ARGS
    ARGS = args = parse_args()
    tasks = plan(args)
    sandbox = Sandbox(tasks)
    with tempfile.TemporaryDirectory(prefix="lipsync-scale-") as tmp:
        studio_start(data_dir=Path(tmp), sandbox=sandbox, database_url=args.database_url)
        from django.db.models import Sum

        from jobs.models import Job, JobState

        api_key = sandbox.api_key
        made = time.perf_counter()
        make_jobs(tasks, api_key=api_key)
        print(
            f"{args.jobs} jobs made in {time.perf_counter() - made:.1f} s; clips {args.seconds} s, "
            f"rtf {RTF:g}, spread {args.spread:g}, submitted over {args.submit_over:g} s"
        )
        first_due = min(
            Job.objects.filter(state=JobState.PROCESSING).values_list("next_poll_at", flat=True)
        ).timestamp()
        cluster = Cluster()
        cluster.thread.start()
        started, c0 = time.time(), cpu()
        print(f"first poll due {first_due - started:.1f} s after the loop starts")
        print(f"{'t (s)':>6} {'CPU % of a core':>16} {'processing':>11} {'status GETs':>12}")
        idle_cpu, last_t, last_c, last_polls = [], started, c0, 0
        deadline = started + args.timeout
        while time.time() < deadline:
            time.sleep(10)
            now, c = time.time(), cpu()
            processing = Job.objects.filter(state=JobState.PROCESSING).count()
            polls = Job.objects.aggregate(n=Sum("poll_count"))["n"] or 0
            share = 100 * (c - last_c) / (now - last_t)
            print(f"{now - started:6.0f} {share:16.1f} {processing:11d} {polls - last_polls:12d}")
            if now < first_due:
                idle_cpu.append(share)
            last_t, last_c, last_polls = now, c, polls
            if not processing:
                break
        cluster.stopping.set()
        cluster.thread.join(timeout=120)
        stats = sandbox.stop()

        done_at = {task_id: done for task_id, _s, _sub, done in tasks}
        lags, polls = [], []
        for task_id, seen, count in Job.objects.filter(provider_task_id__in=done_at).values_list(
            "provider_task_id", "provider_completed_at", "poll_count"
        ):
            polls.append(count)
            if seen is not None:
                lags.append(seen.timestamp() - done_at[task_id])
        lags.sort()
        print(f"\njobs seen completed: {len(lags)} of {args.jobs}")
        if idle_cpu:
            print(
                f"CPU with {args.jobs} in flight and none due: "
                f"{statistics.mean(idle_cpu):.1f} % of a core (mean of {len(idle_cpu)} x 10 s)"
            )
        print(
            f"status GETs per job: {statistics.mean(polls):.2f} (sandbox counted "
            f"{stats['status_calls']})"
        )
        if lags:
            print(
                f"provider finished -> poll saw it: median {statistics.median(lags):.2f} s, "
                f"p95 {lags[max(0, math.ceil(0.95 * len(lags)) - 1)]:.2f} s, max {lags[-1]:.2f} s"
            )
        print("\nmachine:")
        for line in machine_info():
            print(f"  {line}")
        print(
            "reproduce: "
            + shlex.join(
                [
                    ".venv/bin/python",
                    "bench/poll_scale.py",
                    f"--jobs={args.jobs}",
                    f"--spread={args.spread:g}",
                    f"--seconds={args.seconds}",
                    f"--submit-over={args.submit_over:g}",
                    f"--lead={args.lead:g}",
                    f"--seed={args.seed}",
                    *([f"--database-url={args.database_url}"] if args.database_url else []),
                ]
            )
        )


if __name__ == "__main__":
    main()
