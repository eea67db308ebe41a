"""Staff's credit changes: a grant or an adjustment for one member or several,
posted through jobs.credits.ledger, all or none.

Each change is recorded twice over: `created_by` on the ledger entry and an
admin LogEntry (history) on the member, which names the entry so that a
replayed form (same key) finds it and does not log twice.
"""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from jobs.credits.ledger import LedgerError, credits_adjust, credits_grant
from jobs.models import EntryKind, LedgerEntry, Pool

# A typo guard, far above any real grant and far below BigIntegerField's limit.
MAX_CREDIT_CHANGE = 10_000_000


class CreditChangeRefused(Exception):
    """The ledger refused the change for `member`; nothing was posted for anyone."""

    def __init__(self, member: AbstractBaseUser, error: LedgerError):
        super().__init__(str(error))
        self.member, self.error = member, error


@dataclass(frozen=True)
class CreditChangeResult:
    member: AbstractBaseUser
    entry: LedgerEntry
    is_new: bool  # False: this form had already posted it (a replay)


def credit_change_key(form_key: UUID | str, *, member: AbstractBaseUser) -> str:
    """The ledger's idempotency key: one entry per form and member."""
    return f"admin-credits:{form_key}:{member.pk}"


def credit_change_text(*, kind: str, pool: str, amount: int) -> str:
    """`Granted 100 Studio credits`, `Adjusted API credits by -20`."""
    label = Pool(pool).label
    if kind == EntryKind.GRANT:
        return f"Granted {amount:,} {label} credits"
    return f"Adjusted {label} credits by {amount:+,}"


def credit_change_apply(
    members: list[AbstractBaseUser],
    *,
    kind: str,
    pool: str,
    amount: int,
    reason: str,
    form_key: UUID | str,
    by: AbstractBaseUser,
) -> list[CreditChangeResult]:
    """Post one `kind` entry (grant or adjust) per member, all or none, and log
    each new one in the member's history. Raises CreditChangeRefused."""
    post = credits_grant if kind == EntryKind.GRANT else credits_adjust
    reason = reason.strip()
    results = []
    with transaction.atomic():
        # One lock order for everyone, so two bulk changes cannot deadlock.
        for member in sorted(members, key=lambda m: m.pk):
            try:
                entry = post(
                    user=member,
                    pool=pool,
                    amount=amount,
                    key=credit_change_key(form_key, member=member),
                    reason=reason,
                    by=by,
                )
            except LedgerError as error:
                raise CreditChangeRefused(member, error) from error
            is_new = not _already_logged(member, entry)
            if is_new:
                LogEntry.objects.log_actions(
                    user_id=by.pk,
                    queryset=[member],
                    action_flag=CHANGE,
                    change_message=_history_line(entry),
                    single_object=True,
                )
            results.append(CreditChangeResult(member=member, entry=entry, is_new=is_new))
    return results


def _history_line(entry: LedgerEntry) -> str:
    """The member's history line; names the entry so a replay can find it."""
    text = credit_change_text(kind=entry.kind, pool=entry.account.pool, amount=entry.amount)
    text += f" (ledger entry #{entry.pk})"
    return f"{text}: {entry.reason}" if entry.reason else f"{text}."


def _already_logged(member: AbstractBaseUser, entry: LedgerEntry) -> bool:
    # The account row stays locked until our transaction ends, so a replayed
    # submission sees the first one's LogEntry and does not log twice.
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(member, for_concrete_model=False),
        object_id=str(member.pk),
        change_message__contains=f"(ledger entry #{entry.pk})",
    ).exists()


class StarterCreditsRefused(Exception):
    """Only staff grant themselves starter credits."""


def starter_credits_grant(*, member: AbstractBaseUser, after: int) -> CreditChangeResult:
    """A staff member's one-click grant of STARTER_CREDITS studio credits to
    themselves (the first run: the printed staff login has none), posted and
    logged as the admin's grant is. `after` is the member's last ledger entry
    when the page was drawn (starter_credits_after): it keys the grant, so the
    same page's button sent twice grants once. Raises StarterCreditsRefused
    for anyone not staff."""
    if not (member.is_active and member.is_staff):
        raise StarterCreditsRefused("Only staff can grant credits; ask a staff member.")
    [result] = credit_change_apply(
        [member],
        kind=EntryKind.GRANT,
        pool=Pool.STUDIO,
        amount=settings.STARTER_CREDITS,
        reason="Starter credits, granted to themselves from the Studio",
        form_key=f"starter-after-{after}",
        by=member,
    )
    return result


def starter_credits_after(member: AbstractBaseUser) -> int:
    """The member's last ledger entry (0 for none), for the grant's key."""
    last = LedgerEntry.objects.filter(account__user=member).order_by("-pk").first()
    return last.pk if last else 0


def staff_to_ask() -> list[str]:
    """Who a member without credits asks: active staff, by name (full name,
    else username), at most a handful."""
    people = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("pk")[:5]
    return [person.get_full_name() or person.get_username() for person in people]
