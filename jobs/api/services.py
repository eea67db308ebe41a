"""What the API does, for both contracts: make a job on the caller's API
credits, describe one, list, cancel, quote. Views only translate."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.credits.key_budget import KeyBudgetExceeded, KeyTooManyInFlight
from jobs.credits.ledger import InsufficientCredits, credits_balances
from jobs.credits.pricing import NoRate
from jobs.models import ApiKey, DialogOrder, Job, JobMode, JobSource, JobState, Pool, UploadKind
from jobs.net.fetch import UnsafeUrl, url_check
from jobs.pipeline import lifecycle
from jobs.providers import catalogue
from jobs.studio.forms import providers_for

from .errors import ApiError
from .inputs import input_stage, inputs_discard
from .outputs import output_link

# The contracts' model names -> the studio's kinds of video.
MODEL_MODES = {
    "lipsync-video": JobMode.VIDEO_DUB,
    "lipsync-image": JobMode.TALKING_PHOTO,
    "lipsync-image-multi": JobMode.DIALOG,
    "motion-2-dialog": JobMode.DIALOG,
    "motion-2": JobMode.TALKING_PHOTO,
}
# What JoyPix's task answer calls each kind of video (its two models).
JOYPIX_MODELS = {JobMode.DIALOG: "motion-2-dialog", JobMode.TALKING_PHOTO: "motion-2"}
LIPSYNC_MODELS = {
    JobMode.VIDEO_DUB: "lipsync-video",
    JobMode.TALKING_PHOTO: "lipsync-image",
    JobMode.DIALOG: "lipsync-image-multi",
}
# Per contract model: request field -> (input role, kind, required).
MODEL_INPUTS = {
    "lipsync-video": {
        "video": ("video", UploadKind.VIDEO, True),
        "audio": ("audio", UploadKind.AUDIO, True),
        "mask_image": ("mask", UploadKind.IMAGE, False),
    },
    "lipsync-image": {
        "image": ("image", UploadKind.IMAGE, True),
        "audio": ("audio", UploadKind.AUDIO, True),
    },
    "lipsync-image-multi": {
        "image": ("image", UploadKind.IMAGE, True),
        "left_audio": ("left_audio", UploadKind.AUDIO, True),
        "right_audio": ("right_audio", UploadKind.AUDIO, True),
    },
    "motion-2-dialog": {
        "image_url": ("image", UploadKind.IMAGE, True),
        "left_audio_url": ("left_audio", UploadKind.AUDIO, True),
        "right_audio_url": ("right_audio", UploadKind.AUDIO, True),
    },
    "motion-2": {
        "image_url": ("image", UploadKind.IMAGE, True),
        "audio_url": ("audio", UploadKind.AUDIO, True),
    },
}
# lipsync-image-multi's `order` as sent -> the studio's DialogOrder. The
# provider's vocabulary is the studio's (jobs/providers/lipsync_studio.py).
ORDERS = {"meanwhile": DialogOrder.MEANWHILE, "sequential": DialogOrder.SEQUENTIAL}
PAGE_SIZE = 20
PAGE_MAX = 100


@dataclass
class Submission:
    """A job as a contract asked for it. `inputs`: field -> URL or file."""

    model: str
    inputs: dict[str, object] = field(default_factory=dict)
    resolution: str = "480p"
    prompt: str = ""
    seed: int = -1
    order: str = ""
    provider: str = ""
    webhook: str = ""
    prefix: str = "formState."  # how the contract names a field in errors


def key_allows(*, key: ApiKey, mode: str, provider: str, prefix: str) -> None:
    """ApiError 403 naming the kind of video or provider the key may not use."""
    if key.allowed_modes and mode not in key.allowed_modes:
        raise ApiError(
            403,
            f"This key may not make {JobMode(mode).label.lower()} videos ({mode}); "
            f"it may make: {', '.join(key.allowed_modes)}.",
            code="mode_not_allowed",
            field=f"{prefix}model" if prefix else "model",
        )
    if key.allowed_providers and provider not in key.allowed_providers:
        raise ApiError(
            403,
            f"This key may not use the provider {provider!r}; "
            f"it may use: {', '.join(key.allowed_providers)}.",
            code="provider_not_allowed",
            field=f"{prefix}provider",
        )


def provider_pick(
    *, mode: str, asked: str, field_name: str, order: str = "", allowed: list | None = None
) -> str:
    """The provider asked for, if it makes this kind of video; else the
    Studio's first (the first that takes turns, for a dialog asked to) among
    those the key `allowed` (all when empty)."""
    offered = [slug for slug, _label in providers_for(mode)]
    if not asked:
        if allowed and any(slug in allowed for slug in offered):
            offered = [slug for slug in offered if slug in allowed]
        if order and ORDERS[order] != DialogOrder.MEANWHILE:
            taking = [slug for slug in offered if catalogue.takes_dialog_order(slug)]
            return (taking or offered)[0]
        return offered[0]
    if asked not in offered:
        raise ApiError(
            422,
            f"{asked!r} does not make this kind of video here; choose one of: "
            + ", ".join(offered)
            + ".",
            field=field_name,
        )
    return asked


def webhook_clean(url: str, *, field_name: str) -> str:
    """A callback address, kept as given once the SSRF guard accepts it: it
    must be http(s) and resolve to public addresses only. Each delivery
    checks again (jobs/api/webhooks.py), since DNS may change meanwhile."""
    url = (url or "").strip()
    if not url:
        return ""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ApiError(422, "The webhook must be an http(s) URL.", field=field_name)
    try:
        url_check(url)
    except UnsafeUrl as exc:
        raise ApiError(422, f"The webhook cannot be used: {exc}", field=field_name) from None
    return url


def _order(sub: Submission, provider: str) -> str:
    if MODEL_MODES[sub.model] != JobMode.DIALOG or not sub.order:
        return ""
    order = ORDERS[sub.order]
    if not catalogue.takes_dialog_order(provider) and order != DialogOrder.MEANWHILE:
        raise ApiError(
            422,
            f"{catalogue.label_of(provider)} plays both clips at once; it takes no other order.",
            field=f"{sub.prefix}order",
        )
    return order


def _stage_all(*, owner, sub: Submission) -> dict:
    """Every input staged, or none (ApiError naming the first refused field)."""
    staged = {}
    try:
        for name, (role, kind, required) in MODEL_INPUTS[sub.model].items():
            value = sub.inputs.get(name)
            if value in (None, ""):
                if required:
                    raise ApiError(422, "This field is required.", field=f"{sub.prefix}{name}")
                continue
            staged[role] = input_stage(
                owner=owner, kind=kind, value=value, field=f"{sub.prefix}{name}"
            )
    except BaseException:
        inputs_discard(staged.values())
        raise
    return staged


def _mode_and_provider(*, key: ApiKey, sub: Submission) -> tuple[str, str]:
    """The kind of video the contract's model makes and the provider that
    will make it, refused (ApiError) when the key may not use either."""
    mode = MODEL_MODES[sub.model]
    provider = provider_pick(
        mode=mode,
        asked=sub.provider,
        field_name=f"{sub.prefix}provider",
        order=sub.order,
        allowed=key.allowed_providers,
    )
    key_allows(key=key, mode=mode, provider=provider, prefix=sub.prefix)
    return mode, provider


def api_job_submit(
    *, key: ApiKey, sub: Submission, made: Callable[[Job], None] | None = None
) -> Job:
    """Stage the inputs, hold the API credits and queue the job; `made(job)`
    runs in the transaction that makes the job (to keep the request's answer
    with it: jobs.api.idempotency.answer_keep). Raises
    ApiError (402 short of credits or past the key's budget, 403 a kind of
    video or provider the key may not use, 429 too many of the key's jobs in
    flight, 422 naming the field at fault)."""
    mode, provider = _mode_and_provider(key=key, sub=sub)
    order = _order(sub, provider)
    webhook = webhook_clean(sub.webhook, field_name="webhook")
    files = _stage_all(owner=key.owner, sub=sub)
    try:
        with transaction.atomic():
            job = lifecycle.job_create(
                owner=key.owner,
                mode=mode,
                provider=provider,
                resolution=sub.resolution,
                files=files,
                prompt=sub.prompt,
                seed=sub.seed,
                dialog_order=order,
                pool=Pool.API,
                source=JobSource.API,
                api_key=key,
                api_webhook=webhook,
            )
            if made is not None:
                made(job)
        return job
    except InsufficientCredits as exc:
        inputs_discard(files.values())
        raise ApiError(
            402, str(exc), needed=exc.needed, available=exc.available, pool=exc.pool
        ) from None
    except NoRate as exc:
        inputs_discard(files.values())
        raise ApiError(422, str(exc), field=f"{sub.prefix}resolution") from None
    except KeyBudgetExceeded as exc:
        inputs_discard(files.values())
        raise ApiError(
            402,
            str(exc),
            code="key_budget_exceeded",
            budget=exc.budget,
            period=exc.period,
            spent=exc.spent,
            needed=exc.needed,
            renews_at=exc.renews_at.isoformat(),
        ) from None
    except KeyTooManyInFlight as exc:
        inputs_discard(files.values())
        raise ApiError(429, str(exc), code="too_many_in_flight", limit=exc.limit) from None
    except BaseException:
        inputs_discard(files.values())
        raise


# --- Reading ----------------------------------------------------------------------


def job_of_caller(*, key: ApiKey, public_id: str) -> Job:
    """The caller's job by its UUID; 404 for anything else, another member's included."""
    try:
        wanted = uuid.UUID(str(public_id))
    except ValueError:
        wanted = None
    job = None
    if wanted is not None:
        job = Job.objects.filter(uuid=wanted, owner=key.owner, deleted_at__isnull=True).first()
    if job is None:
        raise ApiError(404, "There is no job with this id.")
    return job


def public_status(job: Job) -> str:
    if job.state == JobState.COMPLETED:
        return "completed"
    if job.state == JobState.FAILED:
        return "failed"
    return "processing"  # until the video is archived in the studio


def execution_ms(job: Job) -> int | None:
    if job.state != JobState.COMPLETED or job.finished_at is None:
        return None
    start = job.submitted_at or job.created_at
    return max(0, int((job.finished_at - start).total_seconds() * 1000))


def job_answer(job: Job) -> dict:
    """GET /api/v1/jobs/{id}, as the lipsync.studio page shows it."""
    completed = job.state == JobState.COMPLETED and bool(job.output)
    return {
        "id": str(job.uuid),
        "model": LIPSYNC_MODELS[job.mode],
        "status": public_status(job),
        "output": output_link(job) if completed else None,
        "error": job.error if job.state == JobState.FAILED else "",
        "executionTime": execution_ms(job),
        "timings": None,
    }


def job_list_item(job: Job) -> dict:
    return job_answer(job) | {
        "mode": job.mode,
        "provider": job.provider,
        "resolution": job.resolution,
        "source": job.source,
        "pool": job.pool,
        "credits_held": job.credits_held,
        "credits_charged": job.credits_charged,
        "created_at": job.created_at.isoformat(),
    }


def joypix_status(job: Job) -> str:
    if job.state == JobState.QUEUED:
        return "submitted"
    return public_status(job)


def joypix_task(job: Job) -> dict:
    """GET /v1/tasks/{task_id}'s data, as JoyPix's page shows it."""
    completed = job.state == JobState.COMPLETED and bool(job.output)
    inputs = {"resolution": job.resolution, "prompt": job.prompt, "seed": job.seed}
    return {
        "task_id": str(job.uuid),
        "inputs": json.dumps(inputs),
        "model": JOYPIX_MODELS.get(job.mode) or LIPSYNC_MODELS[job.mode],
        "status": joypix_status(job),
        "error": job.error if job.state == JobState.FAILED else "",
        "video_url": output_link(job) if completed else "",
    }


def _cursor_dump(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_load(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, pk = raw.rsplit("|", 1)
        moment = datetime.fromisoformat(when)
        if timezone.is_naive(moment):
            raise ValueError
        return moment, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "This cursor is not one the studio gave.", field="cursor") from None


STATUS_STATES = {
    "processing": JobState.live(),
    "completed": [JobState.COMPLETED],
    "failed": [JobState.FAILED],
}


def jobs_page(
    *, key: ApiKey, status: str = "", mode: str = "", cursor: str = "", limit: int = PAGE_SIZE
) -> dict:
    """The caller's jobs, newest first, a page at a time."""
    qs = Job.objects.filter(owner=key.owner, deleted_at__isnull=True).order_by("-created_at", "-id")
    if status:
        if status not in STATUS_STATES:
            raise ApiError(422, "Status is one of processing, completed, failed.", field="status")
        qs = qs.filter(state__in=STATUS_STATES[status])
    if mode:
        wanted = MODEL_MODES.get(mode, mode)
        if wanted not in JobMode.values:
            names = ", ".join([*JobMode.values, *MODEL_MODES])
            raise ApiError(422, f"Mode is one of {names}.", field="mode")
        qs = qs.filter(mode=wanted)
    if cursor:
        when, pk = _cursor_load(cursor)
        qs = qs.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk))
    if not 1 <= limit <= PAGE_MAX:
        raise ApiError(422, f"Limit is between 1 and {PAGE_MAX}.", field="limit")
    jobs = list(qs[: limit + 1])
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {
        "jobs": [job_list_item(job) for job in jobs],
        "next_cursor": _cursor_dump(jobs[-1]) if more else None,
    }


def api_job_cancel(*, key: ApiKey, public_id: str) -> Job:
    job = job_of_caller(key=key, public_id=public_id)
    try:
        lifecycle.job_cancel(job)
    except lifecycle.JobActionRefused as exc:
        raise ApiError(409, str(exc), code="not_cancellable") from None
    return Job.objects.get(pk=job.pk)


def me_answer(*, key: ApiKey) -> dict:
    owner = key.owner
    balances = credits_balances(user=owner)
    return {
        "key": {"name": key.name, "prefix": f"sk_{key.prefix}_…"},
        "member": {"username": owner.get_username(), "name": owner.get_full_name()},
        "balances": {
            pool: {"balance": b.balance, "held": b.held, "available": b.available}
            for pool, b in balances.items()
        },
    }


# --- Quoting ----------------------------------------------------------------------


def api_quote(*, key: ApiKey, sub: Submission, seconds: float | None) -> dict:
    """What the job would cost on the API pool, measured as it would be made;
    nothing is held or kept (measured files are discarded)."""
    mode, provider = _mode_and_provider(key=key, sub=sub)
    order = lifecycle.dialog_order_for(provider=provider, mode=mode, order=_order(sub, provider))
    if seconds is None:
        files = _stage_all(owner=key.owner, sub=sub)
        try:
            seconds = lifecycle.billed_seconds(mode=mode, files=files, dialog_order=order)
        finally:
            inputs_discard(files.values())
    try:
        q = lifecycle.job_quote(
            provider=provider, mode=mode, resolution=sub.resolution, seconds=seconds
        )
    except NoRate as exc:
        raise ApiError(422, str(exc), field=f"{sub.prefix}resolution") from None
    expected = Job(provider=provider, mode=mode, resolution=sub.resolution, input_seconds=seconds)
    return {
        "credits": q.credits,
        "usd": str(q.usd),
        "billed_seconds": q.billed_seconds,
        "units": q.units,
        "available": credits_balances(user=key.owner)[Pool.API].available,
        "expected_seconds": round(lifecycle.expected_processing(expected).total_seconds(), 1),
    }
