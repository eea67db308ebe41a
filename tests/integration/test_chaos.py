"""The short chaos run (bench/chaos.py --short) in CI: the studio's real
processes, jobs of every kind through the web form and the API, the sandbox
faulting a quarter of its answers, a cluster worker, a node, the web server
and the sandbox each SIGKILLed at a random moment and started again; then
every job terminal, none sent to the provider twice, every video stored,
every hold resolved, the ledger clean and every webhook delivered.

It runs the script as its own process, on a database it makes for itself:
SQLite + the ORM broker, or, when the suite runs on PostgreSQL + Redis, a
PostgreSQL database beside the test database and the same Redis (its keys
under their own prefix)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _database_args() -> list[str]:
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        return []
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{db['NAME']}_chaos"  # beside the test database; made and dropped by the run
    args = ["--database-url", urlunsplit(url._replace(path=f"/{name}"))]
    if os.environ.get("REDIS_URL"):
        args += ["--redis-url", os.environ["REDIS_URL"]]
    return args


def test_the_short_chaos_run_loses_nothing_and_sends_nothing_twice():
    cmd = [sys.executable, "bench/chaos.py", "--short", *_database_args()]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    kills = re.search(
        r"kills: (\d+) \(worker (\d+), node (\d+), web (\d+), sandbox (\d+)\)", report
    )
    assert kills and int(kills[1]) >= 4, report
    assert all(int(n) >= 1 for n in kills.groups()[1:]), report  # every kind of kill
    assert "lost 0, duplicates 0, ledger differences 0, unresolved holds 0" in report, report
    faulted = float(re.search(r"faulted \d+ = ([\d.]+) %", report)[1])
    assert faulted > 5, report  # the faults did happen
