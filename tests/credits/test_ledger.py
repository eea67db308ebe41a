"""The credit ledger's services and the database constraints beneath them."""

import pytest
from django.db import IntegrityError, transaction

from jobs.credits.ledger import (
    CaptureExceedsHold,
    HoldAlreadyResolved,
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    credits_adjust,
    credits_balances,
    credits_capture,
    credits_grant,
    credits_hold,
    credits_release,
    open_holds,
)
from jobs.models import CreditAccount, EntryKind, Job, JobMode, LedgerEntry, Pool, Resolution

pytestmark = pytest.mark.django_db


def studio(user):
    return credits_balances(user=user)[Pool.STUDIO]


def api(user):
    return credits_balances(user=user)[Pool.API]


def grant(user, amount, key="grant", pool=Pool.STUDIO):
    return credits_grant(user=user, pool=pool, amount=amount, key=key, reason="Welcome")


def hold(user, amount, key="hold", pool=Pool.STUDIO, job=None):
    return credits_hold(user=user, pool=pool, amount=amount, key=key, job=job)


# --- Balances ---------------------------------------------------------------------


def test_a_new_member_has_zero_in_both_pools(alice):
    balances = credits_balances(user=alice)
    assert [(b.balance, b.held, b.available) for b in balances.values()] == [(0, 0, 0)] * 2


def test_a_grant_adds_to_the_posted_balance(alice, staff):
    entry = credits_grant(
        user=alice, pool=Pool.STUDIO, amount=100, key="g1", reason="Welcome", by=staff
    )
    assert (entry.kind, entry.amount, entry.created_by) == (EntryKind.GRANT, 100, staff)
    assert (entry.balance_after, entry.held_after) == (100, 0)
    assert (studio(alice).balance, studio(alice).available) == (100, 100)


def test_an_adjustment_is_signed(alice):
    grant(alice, 100)
    credits_adjust(user=alice, pool=Pool.STUDIO, amount=-30, key="a1", reason="Refund reversed")
    credits_adjust(user=alice, pool=Pool.STUDIO, amount=5, key="a2", reason="Goodwill")
    assert studio(alice).balance == 75


def test_a_hold_reserves_credits_without_spending_them(alice):
    grant(alice, 100)
    entry = hold(alice, 40)
    assert (entry.balance_after, entry.held_after) == (100, 40)
    b = studio(alice)
    assert (b.balance, b.held, b.available) == (100, 40, 60)
    assert list(open_holds(user=alice)) == [entry]


def test_a_capture_charges_and_releases_the_rest_of_its_hold(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    entry = credits_capture(hold=h, amount=25, key="cap")
    assert (entry.kind, entry.amount, entry.hold) == (EntryKind.CAPTURE, 25, h)
    b = studio(alice)
    assert (b.balance, b.held, b.available) == (75, 0, 75)
    assert not open_holds(user=alice).exists()


def test_a_capture_of_the_whole_hold_charges_it_all(alice):
    grant(alice, 100)
    credits_capture(hold=hold(alice, 40), amount=40, key="cap")
    assert (studio(alice).balance, studio(alice).held) == (60, 0)


def test_a_capture_of_zero_charges_nothing(alice):
    grant(alice, 100)
    credits_capture(hold=hold(alice, 40), amount=0, key="cap")
    assert (studio(alice).balance, studio(alice).held) == (100, 0)


def test_it_refuses_a_capture_larger_than_its_hold(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    with pytest.raises(CaptureExceedsHold):
        credits_capture(hold=h, amount=41, key="cap")
    assert (studio(alice).balance, studio(alice).held) == (100, 40)


def test_a_release_gives_the_whole_hold_back(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    entry = credits_release(hold=h, key="rel")
    assert (entry.kind, entry.amount) == (EntryKind.RELEASE, 40)
    assert (studio(alice).balance, studio(alice).held) == (100, 0)


def test_a_resolution_keeps_the_job_of_its_hold(alice):
    job = Job.objects.create(
        owner=alice,
        mode=JobMode.TALKING_PHOTO,
        provider="sandbox",
        provider_model="m",
        resolution=Resolution.P480,
    )
    grant(alice, 100)
    entry = credits_release(hold=hold(alice, 40, job=job), key="rel")
    assert entry.job == job


def test_a_stale_copy_of_a_hold_whose_job_was_deleted_still_resolves(alice):
    job = Job.objects.create(
        owner=alice,
        mode=JobMode.TALKING_PHOTO,
        provider="sandbox",
        provider_model="m",
        resolution=Resolution.P480,
    )
    grant(alice, 100)
    h = hold(alice, 40, job=job)
    job.delete()
    entry = credits_release(hold=h, key="rel")
    assert entry.job is None


# --- Refusals ---------------------------------------------------------------------


def test_it_refuses_a_hold_larger_than_available(alice):
    grant(alice, 100)
    hold(alice, 70, key="h1")
    with pytest.raises(InsufficientCredits) as refused:
        hold(alice, 31, key="h2")
    assert (refused.value.needed, refused.value.available) == (31, 30)
    assert "30 are available" in str(refused.value)
    assert studio(alice).held == 70


def test_it_refuses_a_negative_adjustment_below_available(alice):
    grant(alice, 100)
    hold(alice, 60)
    with pytest.raises(InsufficientCredits):
        credits_adjust(user=alice, pool=Pool.STUDIO, amount=-41, key="a", reason="Oops")
    assert studio(alice).balance == 100
    credits_adjust(user=alice, pool=Pool.STUDIO, amount=-40, key="a2", reason="Oops")
    assert studio(alice).available == 0


def test_pools_are_separate(alice):
    grant(alice, 100, pool=Pool.STUDIO)
    with pytest.raises(InsufficientCredits) as refused:
        hold(alice, 1, pool=Pool.API)
    assert refused.value.pool == Pool.API
    assert (studio(alice).available, api(alice).available) == (100, 0)


def test_members_are_separate(alice, bob):
    grant(alice, 100)
    with pytest.raises(InsufficientCredits):
        hold(bob, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda u: credits_grant(user=u, pool=Pool.STUDIO, amount=0, key="k"),
        lambda u: credits_grant(user=u, pool=Pool.STUDIO, amount=-5, key="k"),
        lambda u: credits_grant(user=u, pool=Pool.STUDIO, amount=2.5, key="k"),
        lambda u: credits_grant(user=u, pool=Pool.STUDIO, amount=5, key=""),
        lambda u: credits_grant(user=u, pool=Pool.STUDIO, amount=5, key="k" * 201),
        lambda u: credits_grant(user=u, pool="gold", amount=5, key="k"),
        lambda u: credits_adjust(user=u, pool=Pool.STUDIO, amount=0, key="k", reason="x"),
        lambda u: credits_adjust(user=u, pool=Pool.STUDIO, amount=5, key="k", reason=" "),
        lambda u: credits_hold(user=u, pool=Pool.STUDIO, amount=0, key="k"),
    ],
    ids=[
        "zero grant",
        "negative grant",
        "fractional grant",
        "empty key",
        "long key",
        "unknown pool",
        "zero adjustment",
        "adjustment without reason",
        "zero hold",
    ],
)
def test_it_refuses_malformed_calls(alice, call):
    with pytest.raises(LedgerError):
        call(alice)
    assert not LedgerEntry.objects.exists()


def test_it_refuses_to_resolve_an_entry_that_is_not_a_hold(alice):
    with pytest.raises(LedgerError):
        credits_release(hold=grant(alice, 100), key="rel")


# --- Idempotency --------------------------------------------------------------------


def test_a_replayed_grant_returns_the_first_entry(alice):
    first = grant(alice, 100, key="g")
    again = grant(alice, 100, key="g")
    assert again.pk == first.pk
    assert LedgerEntry.objects.count() == 1
    assert studio(alice).balance == 100


def test_a_replayed_hold_returns_the_first_entry_even_when_credits_ran_out(alice):
    grant(alice, 100)
    first = hold(alice, 100, key="h")
    assert hold(alice, 100, key="h").pk == first.pk
    assert LedgerEntry.objects.filter(kind=EntryKind.HOLD).count() == 1
    assert studio(alice).held == 100


def test_a_replayed_capture_returns_the_first_entry(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    first = credits_capture(hold=h, amount=30, key="c")
    assert credits_capture(hold=h, amount=30, key="c").pk == first.pk
    assert LedgerEntry.objects.filter(kind=EntryKind.CAPTURE).count() == 1
    assert studio(alice).balance == 70


def test_a_replayed_release_returns_the_first_entry(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    first = credits_release(hold=h, key="r")
    assert credits_release(hold=h, key="r").pk == first.pk
    assert studio(alice).held == 0


def test_a_key_reused_with_a_different_amount_is_a_conflict(alice):
    grant(alice, 100, key="g")
    with pytest.raises(IdempotencyConflict):
        grant(alice, 101, key="g")
    assert studio(alice).balance == 100


def test_a_key_reused_for_another_member_is_a_conflict(alice, bob):
    grant(alice, 100, key="g")
    with pytest.raises(IdempotencyConflict):
        grant(bob, 100, key="g")
    assert studio(bob).balance == 0


def test_a_key_reused_for_another_kind_is_a_conflict(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    credits_capture(hold=h, amount=40, key="settle")
    h2 = hold(alice, 40, key="hold-2")
    with pytest.raises(IdempotencyConflict):
        credits_release(hold=h2, key="settle")


def test_a_capture_key_reused_for_another_hold_is_a_conflict(alice):
    grant(alice, 100)
    h1 = hold(alice, 40, key="h1")
    h2 = hold(alice, 40, key="h2")
    credits_capture(hold=h1, amount=10, key="cap")
    with pytest.raises(IdempotencyConflict):
        credits_capture(hold=h2, amount=10, key="cap")
    assert list(open_holds(user=alice)) == [h2]


# --- One resolution per hold --------------------------------------------------------


def test_it_refuses_a_second_capture(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    credits_capture(hold=h, amount=10, key="c1")
    with pytest.raises(HoldAlreadyResolved):
        credits_capture(hold=h, amount=10, key="c2")
    assert studio(alice).balance == 90


def test_it_refuses_a_capture_after_a_release(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    credits_release(hold=h, key="r")
    with pytest.raises(HoldAlreadyResolved):
        credits_capture(hold=h, amount=10, key="c")
    assert (studio(alice).balance, studio(alice).held) == (100, 0)


def test_it_refuses_a_release_after_a_capture(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    credits_capture(hold=h, amount=40, key="c")
    with pytest.raises(HoldAlreadyResolved):
        credits_release(hold=h, key="r")
    assert (studio(alice).balance, studio(alice).held) == (60, 0)


def _direct_resolution(h, *, kind, key):
    """A resolution written straight to the table, as buggy code might."""
    return LedgerEntry.objects.create(
        account=h.account,
        kind=kind,
        amount=h.amount,
        hold=h,
        idempotency_key=key,
        balance_after=0,
        held_after=0,
    )


def test_the_database_refuses_a_second_capture_of_one_hold(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    credits_capture(hold=h, amount=40, key="c1")
    with pytest.raises(IntegrityError), transaction.atomic():
        _direct_resolution(h, kind=EntryKind.CAPTURE, key="c2")


def test_the_database_refuses_a_capture_after_a_release(alice):
    grant(alice, 100)
    h = hold(alice, 40)
    credits_release(hold=h, key="r")
    with pytest.raises(IntegrityError), transaction.atomic():
        _direct_resolution(h, kind=EntryKind.CAPTURE, key="c")


def test_the_database_refuses_a_resolution_without_a_hold(alice):
    account = CreditAccount.objects.create(user=alice, pool=Pool.STUDIO)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            account=account,
            kind=EntryKind.RELEASE,
            amount=0,
            idempotency_key="r",
            balance_after=0,
            held_after=0,
        )


def test_the_database_refuses_available_below_zero(alice):
    grant(alice, 10)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(user=alice).update(held=11)


def test_the_database_refuses_a_reused_idempotency_key(alice):
    entry = grant(alice, 10, key="g")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            account=entry.account,
            kind=EntryKind.GRANT,
            amount=10,
            idempotency_key="g",
            balance_after=20,
            held_after=0,
        )
