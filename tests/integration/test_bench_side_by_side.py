"""The polling bench's side-by-side mode (bench/dialog_pipeline.py), run small
in CI so a change to the studio that breaks the bench shows here rather than
the next time someone measures: the studio and a plain 5 s poller watch the
same sandbox tasks, the warm-up lets the studio measure its archive time,
and the summary line is printed. Its figures are not asserted (too few jobs,
a shared machine): the bench's figures are for bench/RESULTS.md.

The bench is its own process on its own SQLite (bench/django_env.py clears
DATABASE_URL and REDIS_URL), whatever database the suite runs on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_side_by_side_bench_runs_end_to_end_and_matches_its_lag():
    cmd = [
        sys.executable, "bench/dialog_pipeline.py", "--jobs=3", "--rtf=1", "--seconds=1-2",
        "--stagger=0.3", "--side-by-side", "--archive-workers=2", "--warm-up=10",
        "--history=12", "--spread=0.1",
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "== studio: 3/3 jobs completed" in report, report
    assert "== plain 5 s poller (same tasks): 3/3 jobs completed" in report, report
    assert "warm-up: 10 of 10 jobs archived" in report, report
    # Ten archived jobs are enough: the lag target is the matched one, not the fixed 3 s.
    lag = re.search(r"lag target at the end ([\d.]+) s: a 5 s poller's p95 less", report)
    assert lag and 2.0 <= float(lag[1]) <= 4.75, report
    assert re.search(r"SUMMARY realistic clock, rtf 1, 480p, spread 10%: calls ratio", report)
