"""The credit-change service on its own, as any caller (not only the admin)
would use it: all or none across members, and a replayed form posts once."""

import pytest
from django.contrib.admin.models import LogEntry

from jobs.credits.ledger import InsufficientCredits, credits_balances, credits_grant
from jobs.models import EntryKind, LedgerEntry, Pool
from jobs.staff.credit_changes import CreditChangeRefused, credit_change_apply

pytestmark = pytest.mark.django_db

FORM_KEY = "5f0c2a5e-3b7e-4d0a-9a53-2f1e3c0a9b11"


def logged(member) -> list[str]:
    entries = LogEntry.objects.filter(content_type__model="user", object_id=str(member.pk))
    return [e.get_change_message() for e in entries]


def test_a_change_for_several_members_posts_for_none_when_one_cannot_take_it(staff, alice, bob):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=50, key="g")
    with pytest.raises(CreditChangeRefused) as refused:
        credit_change_apply(
            [alice, bob],
            kind=EntryKind.ADJUST,
            pool=Pool.STUDIO,
            amount=-10,
            reason="Expired",
            form_key=FORM_KEY,
            by=staff,
        )
    assert refused.value.member == bob
    assert isinstance(refused.value.error, InsufficientCredits)
    assert credits_balances(user=alice)[Pool.STUDIO].balance == 50
    assert LedgerEntry.objects.count() == 1
    assert logged(alice) == logged(bob) == []


def test_a_replayed_change_posts_and_logs_once(staff, alice):
    def grant():
        return credit_change_apply(
            [alice],
            kind=EntryKind.GRANT,
            pool=Pool.API,
            amount=1200,
            reason="  Welcome  ",
            form_key=FORM_KEY,
            by=staff,
        )

    [first], [again] = grant(), grant()

    assert (first.is_new, again.is_new) == (True, False)
    assert first.entry == again.entry
    assert (first.entry.created_by, first.entry.reason) == (staff, "Welcome")
    assert credits_balances(user=alice)[Pool.API].balance == 1200
    assert logged(alice) == [f"Granted 1,200 API credits (ledger entry #{first.entry.pk}): Welcome"]
