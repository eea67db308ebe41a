"""manage.py check_ledger: recompute every account from its entries."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jobs.credits.ledger import (
    credits_adjust,
    credits_capture,
    credits_grant,
    credits_hold,
    credits_release,
)
from jobs.models import CreditAccount, EntryKind, Job, JobState, LedgerEntry, Pool
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def check_ledger() -> tuple[bool, str]:
    """(passed, output) of the command."""
    out = StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as failure:
        return False, out.getvalue() + str(failure)
    return True, out.getvalue()


def live_job(owner) -> Job:
    """A processing job with no ledger entries yet: each test holds for it."""
    return make_job(owner, state=JobState.PROCESSING, held=None)


@pytest.fixture
def busy_ledger(alice, bob):
    """Every kind of entry, in both pools, all consistent."""
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g1")
    credits_grant(user=alice, pool=Pool.API, amount=50, key="g2")
    credits_grant(user=bob, pool=Pool.STUDIO, amount=20, key="g3")
    credits_adjust(user=bob, pool=Pool.API, amount=12, key="a1", reason="Promotion")
    credits_adjust(user=bob, pool=Pool.API, amount=-2, key="a2", reason="Typo")
    done = credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h1", job=live_job(alice))
    credits_capture(hold=done, amount=15, key="c1")
    failed = credits_hold(user=alice, pool=Pool.API, amount=10, key="h2", job=live_job(alice))
    credits_release(hold=failed, key="r1")
    credits_hold(user=bob, pool=Pool.STUDIO, amount=20, key="h3", job=live_job(bob))


def test_a_clean_ledger_passes(busy_ledger):
    passed, output = check_ledger()
    assert passed
    assert "Ledger OK: 4 accounts, 10 entries checked." in output


def test_an_empty_ledger_passes(db):
    passed, output = check_ledger()
    assert passed
    assert "Ledger OK: 0 accounts, 0 entries checked." in output


def test_it_runs_a_fixed_number_of_queries(busy_ledger, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        check_ledger()


def test_it_reports_a_tampered_balance(busy_ledger, alice):
    CreditAccount.objects.filter(user=alice, pool=Pool.STUDIO).update(balance=1000)
    passed, output = check_ledger()
    assert not passed
    assert "stored balance 1,000 held 0, but its entries give balance 85 held 0" in output
    assert "alice · Studio" in output
    assert "1 problem(s) found" in output


def test_it_reports_tampered_holds(busy_ledger, bob):
    CreditAccount.objects.filter(user=bob, pool=Pool.STUDIO).update(held=5)
    passed, output = check_ledger()
    assert not passed
    assert "stored balance 20 held 5, but its entries give balance 20 held 20" in output


def test_it_reports_an_account_with_no_entries_but_a_balance(alice):
    CreditAccount.objects.create(user=alice, pool=Pool.API, balance=7)
    passed, output = check_ledger()
    assert not passed
    assert "stored balance 7 held 0, but its entries give balance 0 held 0" in output


def test_it_reports_an_open_hold_with_no_job(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g")
    hold = credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h")
    passed, output = check_ledger()
    assert not passed
    assert f"Hold #{hold.pk} of 30 credits on alice · Studio is open but has no job." in output


def test_it_reports_an_open_hold_whose_job_has_finished(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g")
    job = live_job(alice)
    hold = credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h", job=job)
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED, finished_at=job.created_at)
    passed, output = check_ledger()
    assert not passed
    assert f"Hold #{hold.pk}" in output
    assert f"belongs to job #{job.pk}, which is failed" in output


def test_a_live_job_keeps_its_hold_open_without_complaint(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g")
    credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h", job=live_job(alice))
    assert check_ledger()[0]


def test_it_reports_a_capture_larger_than_its_hold(alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g")
    hold = credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h", job=live_job(alice))
    capture = credits_capture(hold=hold, amount=30, key="c")
    # Only a bug or a hand edit could do this; the service refuses it.
    LedgerEntry.objects.filter(pk=capture.pk).update(amount=45)
    CreditAccount.objects.filter(user=alice).update(balance=55)
    passed, output = check_ledger()
    assert not passed
    assert f"Capture #{capture.pk} charges 45 credits against hold #{hold.pk} of 30." in output


def test_it_reports_a_resolution_of_another_accounts_hold(alice, bob):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g")
    hold = credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h", job=live_job(alice))
    release = credits_release(hold=hold, key="r")
    bobs = CreditAccount.objects.create(user=bob, pool=Pool.STUDIO)
    LedgerEntry.objects.filter(pk=release.pk).update(account=bobs)
    passed, output = check_ledger()
    assert not passed
    assert f"Release #{release.pk} resolves entry #{hold.pk}" in output


def test_it_lists_every_problem_on_its_own_line(alice, bob):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="g")
    credits_hold(user=alice, pool=Pool.STUDIO, amount=30, key="h")
    CreditAccount.objects.create(user=bob, pool=Pool.API, balance=7)
    passed, output = check_ledger()
    assert not passed
    problem_lines = [line for line in output.splitlines() if "#" in line]
    assert len(problem_lines) == 2
    assert "2 problem(s) found" in output


def _one_more_credit(entry: LedgerEntry) -> None:
    LedgerEntry.objects.filter(pk=entry.pk).update(amount=entry.amount + 1)


def _resolving_another_entry(release: LedgerEntry) -> None:
    other = LedgerEntry.objects.filter(account=release.account, kind=EntryKind.GRANT).first()
    LedgerEntry.objects.filter(pk=release.pk).update(hold=other)


# Per kind: which entry of busy_ledger to spoil, and how. A new kind fails the
# test below until check_ledger (and this table) learn what a wrong one is.
SPOILED = {
    EntryKind.GRANT: ({}, _one_more_credit),
    EntryKind.ADJUST: ({}, _one_more_credit),
    EntryKind.HOLD: ({"resolutions__isnull": True}, _one_more_credit),  # an open one
    EntryKind.CAPTURE: ({}, _one_more_credit),
    EntryKind.RELEASE: ({}, _resolving_another_entry),  # its hold opens again
}


@pytest.mark.parametrize("kind", EntryKind.values)
def test_entry_kinds_are_all_covered_by_the_recomputation(busy_ledger, kind):
    assert set(LedgerEntry.objects.values_list("kind", flat=True)) == set(EntryKind.values)
    assert check_ledger()[0], "the untouched ledger passes"
    assert kind in SPOILED, f"check_ledger does not know what a wrong {kind} entry is"
    where, spoil = SPOILED[kind]
    entry = LedgerEntry.objects.filter(kind=kind, **where).select_related("account__user")[0]

    spoil(entry)

    passed, output = check_ledger()
    assert not passed, f"a wrong {kind} entry went unnoticed"
    assert f"Account #{entry.account_id} ({entry.account}): stored balance" in output
