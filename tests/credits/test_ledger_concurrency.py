"""The ledger under real concurrency: many threads, each with its own connection.

Run on SQLite (the default; writers serialize through IMMEDIATE transactions)
and on PostgreSQL (DATABASE_URL; the account row lock serializes them).
"""

from io import StringIO

import pytest
from django.core.management import call_command

from jobs.credits.ledger import (
    HoldAlreadyResolved,
    InsufficientCredits,
    credits_balances,
    credits_capture,
    credits_grant,
    credits_hold,
    credits_release,
)
from jobs.models import EntryKind, Job, LedgerEntry, Pool
from tests.factories import make_job
from tests.threads_support import run_together

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 50


def make_jobs(owner, count: int) -> list[Job]:
    """Queued jobs with no ledger entries yet: each test holds for them."""
    return [make_job(owner, held=None) for _ in range(count)]


def assert_ledger_ok() -> None:
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()


def test_concurrent_holds_never_overdraw(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=50, key="grant")
    jobs = make_jobs(alice, THREADS)

    results = run_together(
        THREADS,
        lambda i: credits_hold(
            user=alice, pool=Pool.STUDIO, amount=5, key=f"hold-{i}", job=jobs[i]
        ),
    )

    held = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(held), len(refused)) == (10, 40), results
    balance = credits_balances(user=alice)[Pool.STUDIO]
    assert (balance.balance, balance.held, balance.available) == (50, 50, 0)
    assert LedgerEntry.objects.filter(kind=EntryKind.HOLD).count() == 10
    assert_ledger_ok()


def test_one_key_used_by_many_threads_makes_one_entry(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="grant")
    job = make_jobs(alice, 1)[0]

    results = run_together(
        THREADS,
        lambda i: credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="job-1", job=job),
    )

    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert LedgerEntry.objects.filter(idempotency_key="job-1").count() == 1
    assert credits_balances(user=alice)[Pool.STUDIO].held == 30
    assert_ledger_ok()


def test_concurrent_grants_to_a_new_member_all_count(alice):
    # Nobody has an account yet: every thread races to create it.
    results = run_together(
        THREADS,
        lambda i: credits_grant(user=alice, pool=Pool.API, amount=3, key=f"grant-{i}"),
    )

    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert credits_balances(user=alice)[Pool.API].balance == 3 * THREADS
    assert alice.credit_accounts.count() == 1
    assert_ledger_ok()


def test_concurrent_captures_and_releases_of_one_hold_resolve_it_once(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="grant")
    job = make_jobs(alice, 1)[0]
    hold = credits_hold(user=alice, pool=Pool.STUDIO, amount=40, key="hold", job=job)

    def settle(i: int):
        if i % 2:
            return credits_release(hold=hold, key=f"release-{i}")
        return credits_capture(hold=hold, amount=25, key=f"capture-{i}")

    results = run_together(THREADS, settle)

    settled = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, HoldAlreadyResolved)]
    assert (len(settled), len(refused)) == (1, THREADS - 1), results
    expected_balance = 75 if settled[0].kind == EntryKind.CAPTURE else 100
    balance = credits_balances(user=alice)[Pool.STUDIO]
    assert (balance.balance, balance.held) == (expected_balance, 0)
    # The job is still live, but its hold is closed: nothing left to report.
    assert_ledger_ok()
