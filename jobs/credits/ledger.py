"""Credit ledger services: every change to anyone's credits goes through here.

Rules (see README, "Credits"):
- One account per member and pool; pools are never interchangeable.
- Entries are append-only. A hold reserves credits; exactly one capture or
  release resolves it; a capture never exceeds its hold.
- Available = posted balance - open holds, never below zero. Each write locks
  the account row inside one transaction, so concurrent holds cannot overdraw.
- Every entry has a unique idempotency key: repeating a call with the same key
  changes nothing and returns the first entry.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from jobs.models import CreditAccount, EntryKind, Job, LedgerEntry, Pool


class LedgerError(Exception):
    """A ledger operation that was refused; the message is safe to show."""


class InsufficientCredits(LedgerError):
    def __init__(self, *, pool: str, needed: int, available: int):
        self.pool, self.needed, self.available = pool, needed, available
        label = Pool(pool).label
        super().__init__(
            f"Not enough {label.lower()} credits: this needs {needed:,}, "
            f"and {available:,} are available."
        )


class HoldAlreadyResolved(LedgerError):
    def __init__(self, hold: LedgerEntry):
        super().__init__(f"Hold #{hold.pk} has already been captured or released.")


class CaptureExceedsHold(LedgerError):
    def __init__(self, *, hold: LedgerEntry, amount: int):
        super().__init__(f"Cannot capture {amount:,} credits against a hold of {hold.amount:,}.")


class IdempotencyConflict(LedgerError):
    def __init__(self, key: str):
        super().__init__(f"The key {key!r} was already used for a different ledger entry.")


@dataclass(frozen=True)
class Balance:
    pool: str
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held

    @property
    def label(self) -> str:
        return Pool(self.pool).label


# --- Reads --------------------------------------------------------------------


def credits_balances(*, user: AbstractBaseUser) -> dict[str, Balance]:
    """Both pools' balances for a member, zero where no account exists yet."""
    found = {a.pool: a for a in CreditAccount.objects.filter(user=user)}
    return {
        pool: Balance(pool=pool, balance=found[pool].balance, held=found[pool].held)
        if pool in found
        else Balance(pool=pool, balance=0, held=0)
        for pool in Pool.values
    }


def open_holds(*, user: AbstractBaseUser | None = None) -> QuerySet[LedgerEntry]:
    """Holds that no capture or release has resolved yet."""
    qs = LedgerEntry.objects.filter(kind=EntryKind.HOLD, resolutions__isnull=True)
    if user is not None:
        qs = qs.filter(account__user=user)
    return qs.select_related("account", "job")


# --- Writes -------------------------------------------------------------------


def credits_grant(
    *,
    user: AbstractBaseUser,
    pool: str,
    amount: int,
    key: str,
    reason: str = "",
    by: AbstractBaseUser | None = None,
) -> LedgerEntry:
    if amount <= 0:
        raise LedgerError("A grant must be a positive number of credits.")
    return _post(
        user=user, pool=pool, kind=EntryKind.GRANT, amount=amount, key=key, reason=reason, by=by
    )


def credits_adjust(
    *,
    user: AbstractBaseUser,
    pool: str,
    amount: int,
    key: str,
    reason: str,
    by: AbstractBaseUser | None = None,
    job: Job | None = None,
) -> LedgerEntry:
    """A signed correction (`job`: the job it concerns, e.g. a refund).
    A negative one may not take available below zero."""
    if amount == 0:
        raise LedgerError("An adjustment must change the balance.")
    if not reason.strip():
        raise LedgerError("An adjustment needs a reason.")
    return _post(
        user=user,
        pool=pool,
        kind=EntryKind.ADJUST,
        amount=amount,
        key=key,
        reason=reason,
        job=job,
        by=by,
    )


def credits_hold(
    *,
    user: AbstractBaseUser,
    pool: str,
    amount: int,
    key: str,
    job: Job | None = None,
    reason: str = "",
) -> LedgerEntry:
    if amount <= 0:
        raise LedgerError("A hold must be a positive number of credits.")
    return _post(
        user=user, pool=pool, kind=EntryKind.HOLD, amount=amount, key=key, job=job, reason=reason
    )


def credits_capture(*, hold: LedgerEntry, amount: int, key: str, reason: str = "") -> LedgerEntry:
    """Charge `amount` (at most the hold) and release the rest of the hold."""
    if amount < 0:
        raise LedgerError("A capture cannot be negative.")
    if amount > hold.amount:
        raise CaptureExceedsHold(hold=hold, amount=amount)
    return _resolve(hold=hold, kind=EntryKind.CAPTURE, amount=amount, key=key, reason=reason)


def credits_release(
    *, hold: LedgerEntry, key: str, reason: str = "", by: AbstractBaseUser | None = None
) -> LedgerEntry:
    """Give the whole hold back (`by`: the staff member who decided it, if one did)."""
    return _resolve(
        hold=hold, kind=EntryKind.RELEASE, amount=hold.amount, key=key, reason=reason, by=by
    )


# --- Internals ----------------------------------------------------------------


KEY_MAX_LENGTH = LedgerEntry._meta.get_field("idempotency_key").max_length


def _check_call(*, amount: int, key: str) -> None:
    # A float or Decimal would be rounded by the database but not by the
    # running totals; an empty key would make every later call a "replay".
    if type(amount) is not int:
        raise LedgerError("Credits are whole numbers.")
    if not key or len(key) > KEY_MAX_LENGTH:
        raise LedgerError(f"An idempotency key of 1 to {KEY_MAX_LENGTH} characters is required.")


def _locked_account(*, user: AbstractBaseUser, pool: str) -> CreditAccount:
    if pool not in Pool.values:
        raise LedgerError(f"Unknown credit pool {pool!r}.")
    account, _ = CreditAccount.objects.get_or_create(user=user, pool=pool)
    return CreditAccount.objects.select_for_update().get(pk=account.pk)


def _replayed(
    *, key: str, account: CreditAccount, kind: str, amount: int, hold: LedgerEntry | None = None
) -> LedgerEntry | None:
    """The entry already written under `key`, if any; a different one is a conflict."""
    existing = LedgerEntry.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    # The hold counts too: a capture key reused for another hold must not
    # report that hold as captured while it is still open.
    same = (existing.account_id, existing.kind, existing.amount, existing.hold_id)
    if same != (account.pk, kind, amount, hold.pk if hold is not None else None):
        raise IdempotencyConflict(key)
    return existing


def _post(
    *,
    user: AbstractBaseUser,
    pool: str,
    kind: str,
    amount: int,
    key: str,
    reason: str = "",
    job: Job | None = None,
    by: AbstractBaseUser | None = None,
) -> LedgerEntry:
    _check_call(amount=amount, key=key)
    with transaction.atomic():
        account = _locked_account(user=user, pool=pool)
        if (entry := _replayed(key=key, account=account, kind=kind, amount=amount)) is not None:
            return entry
        if kind == EntryKind.HOLD:
            if amount > account.available:
                raise InsufficientCredits(pool=pool, needed=amount, available=account.available)
            account.held += amount
        else:  # grant or adjust
            if account.available + amount < 0:
                raise InsufficientCredits(pool=pool, needed=-amount, available=account.available)
            account.balance += amount
        return _write(
            account=account, kind=kind, amount=amount, key=key, reason=reason, job=job, by=by
        )


def _resolve(
    *,
    hold: LedgerEntry,
    kind: str,
    amount: int,
    key: str,
    reason: str,
    by: AbstractBaseUser | None = None,
) -> LedgerEntry:
    _check_call(amount=amount, key=key)
    if hold.kind != EntryKind.HOLD:
        raise LedgerError(f"Entry #{hold.pk} is not a hold.")
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(pk=hold.account_id)
        # Read the hold again under the lock: the caller's copy may be stale
        # (its job may have been deleted since, which nulls hold.job).
        hold = LedgerEntry.objects.select_related("job").get(pk=hold.pk)
        replay = _replayed(key=key, account=account, kind=kind, amount=amount, hold=hold)
        if replay is not None:
            return replay
        if hold.resolutions.exists():
            raise HoldAlreadyResolved(hold)
        account.held -= hold.amount
        if kind == EntryKind.CAPTURE:
            account.balance -= amount
        return _write(
            account=account,
            kind=kind,
            amount=amount,
            key=key,
            reason=reason,
            job=hold.job,
            hold=hold,
            by=by,
        )


def _write(
    *,
    account: CreditAccount,
    kind: str,
    amount: int,
    key: str,
    reason: str,
    job: Job | None = None,
    hold: LedgerEntry | None = None,
    by: AbstractBaseUser | None = None,
) -> LedgerEntry:
    try:
        # A savepoint, so a losing race on a unique key leaves the outer
        # transaction usable for the error to be reported.
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                account=account,
                kind=kind,
                amount=amount,
                idempotency_key=key,
                reason=reason[:500],
                job=job,
                hold=hold,
                created_by=by,
                balance_after=account.balance,
                held_after=account.held,
            )
            account.save(update_fields=["balance", "held", "updated_at"])
    except IntegrityError:
        # Another transaction won the race for this key (or this hold): an
        # identical entry is a replay, anything else is refused.
        replay = _replayed(key=key, account=account, kind=kind, amount=amount, hold=hold)
        if replay is not None:
            return replay
        if hold is not None and hold.resolutions.exists():
            raise HoldAlreadyResolved(hold) from None
        raise
    return entry
