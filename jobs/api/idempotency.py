"""`Idempotency-Key` on any POST: the first request with a key is answered
and its answer kept for 24 h; a retry with the same key and body gets that
answer again and makes nothing; the same key with another body gets 422.

The key's row is written (and committed) before the work starts, so of many
concurrent duplicates exactly one inserts it (the unique constraint) and
does the work; the others wait for its answer. Server errors (5xx) are not
kept: the row goes, and a retry does the work again."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import IdempotencyKey

from .errors import ApiError

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
MAX_KEY = 255
# How long a duplicate waits for the first request's answer, and when a row
# with no answer is taken for one whose request died.
WAIT_SECONDS = 60.0
STALE_AFTER = timedelta(minutes=10)

Work = Callable[[], tuple[int, dict, object]]  # -> (status, body, job or None)


def fingerprint(request) -> str:
    """Method, path and body. A multipart body is read as its fields and the
    bytes of its files (its boundary differs between two sends of the same)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    if request.content_type == "multipart/form-data":
        for name in sorted(request.POST):
            for value in request.POST.getlist(name):
                digest.update(f"field {name}={value}\n".encode())
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest.update(f"file {name} {upload.size}\n".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    else:
        digest.update(request.body)
    return digest.hexdigest()


def idempotent(
    request, *, owner, work: Work, error_body: Callable[[ApiError], dict] = ApiError.body
) -> tuple[int, dict]:
    """Run `work` once per Idempotency-Key (none: every time). An ApiError
    from `work` is an answer like any other (`error_body` shapes it)."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        status, body, _job = _run(work, error_body)
        return status, body
    if len(key) > MAX_KEY:
        raise ApiError(422, f"An Idempotency-Key is at most {MAX_KEY} characters.", field=HEADER)
    print_ = fingerprint(request)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        row = _claim(owner=owner, key=key, fingerprint=print_)
        if row is None:
            break  # ours: do the work below
        if row.fingerprint != print_:
            raise ApiError(
                422,
                "This Idempotency-Key was used with another request body.",
                field=HEADER,
                code="idempotency_key_reused",
            )
        if row.status_code is not None:
            return row.status_code, row.response
        if time.monotonic() >= deadline:
            raise ApiError(
                409, "A request with this Idempotency-Key is still being answered; try again."
            )
        time.sleep(0.05)
    try:
        status, body, job = _run(work, error_body)
    except BaseException:
        IdempotencyKey.objects.filter(owner=owner, key=key).delete()
        raise
    if status >= 500:
        IdempotencyKey.objects.filter(owner=owner, key=key).delete()
    else:
        IdempotencyKey.objects.filter(owner=owner, key=key).update(
            status_code=status, response=body, job=job
        )
    return status, body


def answer_keep(request, *, owner, status: int, body: dict, job=None) -> None:
    """Keep the answer to this request's Idempotency-Key now. Work that makes
    something calls it inside the transaction that makes it (api_job_submit's
    `made`): a process killed after that commit, before `idempotent` stores the
    answer, would otherwise leave a key with no answer, which a retry takes
    after STALE_AFTER and does the work again: a second job."""
    key = request.headers.get(HEADER, "").strip()
    if key:
        IdempotencyKey.objects.filter(owner=owner, key=key).update(
            status_code=status, response=body, job=job
        )


def _run(work: Work, error_body: Callable[[ApiError], dict]) -> tuple[int, dict, object]:
    try:
        return work()
    except ApiError as exc:
        if exc.headers:  # an answer with headers (429) is not one to replay
            raise
        return exc.status, error_body(exc), None


def _claim(*, owner, key: str, fingerprint: str) -> IdempotencyKey | None:
    """None when this request now owns the key; else the row that does."""
    now = timezone.now()
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(owner=owner, key=key, fingerprint=fingerprint)
        return None
    except IntegrityError:
        pass
    row = IdempotencyKey.objects.filter(owner=owner, key=key).first()
    if row is None:
        return _claim(owner=owner, key=key, fingerprint=fingerprint)  # it just went
    expired = row.created_at < now - KEEP_FOR
    stale = row.status_code is None and row.created_at < now - STALE_AFTER
    if expired or stale:
        # Its time is over: take the key afresh (conditional, so one taker wins).
        IdempotencyKey.objects.filter(pk=row.pk, created_at=row.created_at).delete()
        return _claim(owner=owner, key=key, fingerprint=fingerprint)
    return row


def idempotency_keys_purge(*, now=None) -> int:
    """Forget keys older than 24 h (the daily retention task)."""
    now = now or timezone.now()
    return IdempotencyKey.objects.filter(created_at__lt=now - KEEP_FOR).delete()[0]
