"""The poll loop's CPU per provider status request, with every round full.

    .venv/bin/python bench/poll_cpu.py [--jobs 2000] [--seconds 20] [--profile out.prof]

bench/poll_scale.py's set-up (its sandbox child, its bulk-made jobs, the same
learnt schedule), but the jobs were submitted about one render time ago, so
they finish around the start and are all due at once: the loop (poller.poll_due
in this thread, as on a cluster) claims full batches of 64 for the whole run,
some tasks answering "processing", then more and more "completed". The
result is this process's CPU (time.process_time: every thread, not the
sandbox) divided by the status requests the sandbox answered, and the
share of it spent in the claims, the writes and the rest of each round
(mostly the fetches). With --profile, a cProfile of the run (Python 3.12+
profiles every thread: its times are wall-clock, the fetching threads'
waits included) is saved and its top entries printed. A script, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import poll_scale  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the loop runs")
    parser.add_argument("--profile", default=None, help="save a cProfile of the run here")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def _timed(spent: dict[str, float], module, *names: str) -> None:
    """Wrap module.name so the CPU spent in it is added up. These run in the
    loop's thread while the fetching threads are idle, so process_time is
    theirs alone (run_round's includes its fetches)."""
    for name in names:
        spent[name] = 0.0
        func = getattr(module, name)

        def wrapper(*args, _func=func, _name=name, **kwargs):
            began = time.process_time()
            try:
                return _func(*args, **kwargs)
            finally:
                spent[_name] += time.process_time() - began

        setattr(module, name, wrapper)


def main() -> None:
    args = parse_args()
    # poll_scale's plan with the submissions one typical render time (rtf 15 x
    # 5.5 s) ago, spread over 10 s: the tasks finish around the start (±10 %).
    poll_scale.ARGS = scale = argparse.Namespace(
        jobs=args.jobs, spread=0.1, seconds="3-8", submit_over=10.0, lead=-85.0, seed=args.seed
    )
    tasks = poll_scale.plan(scale)
    sandbox = poll_scale.Sandbox(tasks)
    with tempfile.TemporaryDirectory(prefix="lipsync-pollcpu-") as tmp:
        poll_scale.studio_start(data_dir=Path(tmp), sandbox=sandbox, database_url=args.database_url)
        from django.db.models import Sum
        from django.utils import timezone

        from jobs.models import Job, JobState
        from jobs.pipeline import lifecycle, poller

        poll_scale.make_jobs(tasks, api_key=sandbox.api_key)
        # Everyone due now, whatever the schedule's first poll said.
        Job.objects.filter(state=JobState.PROCESSING).update(next_poll_at=timezone.now())

        spent: dict[str, float] = {}
        _timed(spent, poller, "run_round", "seconds_until_due")
        _timed(spent, lifecycle, "polls_claim_due", "polls_apply", "polls_not_done")
        profile = cProfile.Profile() if args.profile else None
        times, c0, t0 = os.times(), time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        poller.poll_due(max_seconds=args.seconds)
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        user, system = os.times().user - times.user, os.times().system - times.system
        stats = sandbox.stop()

        requests = max(1, stats["status_calls"])
        polls = Job.objects.aggregate(n=Sum("poll_count"))["n"] or 0
        left = Job.objects.filter(state=JobState.PROCESSING).count()
        print(
            f"{args.jobs} jobs, {wall:.1f} s: {requests} status requests (polls counted {polls}), "
            f"{args.jobs - left} seen finished; CPU {cpu:.2f} s, {100 * cpu / wall:.0f} % of a core"
        )
        print(
            f"CPU per status request: {1000 * cpu / requests:.2f} ms "
            f"(user {1000 * user / requests:.2f}, system {1000 * system / requests:.2f})"
        )
        for name, seconds in spent.items():
            print(f"  in {name}: {1000 * seconds / requests:.2f} ms")
        if profile:
            profile.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
