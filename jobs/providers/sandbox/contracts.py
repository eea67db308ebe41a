"""The two provider contracts the sandbox speaks, to the letter of
../shared/seeds/joypix-motion-2-dialog-api.txt and lipsync-studio-api.txt
(and JoyPix's single-speaker motion-2 as ../shared/provider-facts.md records
it): paths, request validation and the JSON of every answer.

Inputs are named by *role* inside the sandbox (image, video, audio,
left_audio, right_audio, mask); the mappings below say which request field
carries which role.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .server import Task

# lipsync-image-multi's two audio fields ({formState field: role}), as the page's English
# edition names them (../shared/provider-facts.md).
MULTI_AUDIO_FIELDS = {"left_audio": "left_audio", "right_audio": "right_audio"}
# ... and its `order`: "meanwhile" (both speak at once: the longer clip's length) is the
# page's; any other value is billed on the sum, and "sequential" (left, then right) is our
# reading of it, the same as jobs/providers/lipsync_studio.py's DIALOG_ORDERS. Left out,
# the clips play one after the other, as the page's "otherwise" says.
SEQUENTIAL, MEANWHILE = "sequential", "meanwhile"
MULTI_ORDERS = (SEQUENTIAL, MEANWHILE)

# --- lipsync.studio: model (= the endpoint's last path segment) -> {formState field: role}.
LIPSYNC_MODELS: dict[str, dict[str, str]] = {
    "lipsync-video": {"video": "video", "audio": "audio", "mask_image": "mask"},
    "lipsync-image": {"image": "image", "audio": "audio"},
    "lipsync-image-multi": {"image": "image", **MULTI_AUDIO_FIELDS},
}
LIPSYNC_OPTIONAL = frozenset({"mask_image"})
LIPSYNC_SUBMIT_PREFIX = "/api/v1/"  # + model
LIPSYNC_JOB_PREFIX = "/api/v1/jobs/"  # + id

# --- JoyPix: model (= the submit path's last segment) -> {body field: role}.
# Motion-2-Dialog (a dialog) and Motion-2 (one speaker: a talking photo) take
# the same options and are polled at the same path.
JOYPIX_MODEL = "motion-2-dialog"
JOYPIX_PHOTO_MODEL = "motion-2"
JOYPIX_INPUTS: dict[str, str] = {
    "left_audio_url": "left_audio",
    "right_audio_url": "right_audio",
    "image_url": "image",
}
JOYPIX_MODELS: dict[str, dict[str, str]] = {
    JOYPIX_MODEL: JOYPIX_INPUTS,
    JOYPIX_PHOTO_MODEL: {"audio_url": "audio", "image_url": "image"},
}
JOYPIX_SUBMIT_PREFIX = "/v1/lip-sync/"  # + model
JOYPIX_SUBMIT_PATH = JOYPIX_SUBMIT_PREFIX + JOYPIX_MODEL
JOYPIX_TASK_PREFIX = "/v1/tasks/"  # + task_id

RESOLUTIONS = ("480p", "720p")
DEFAULT_RESOLUTION = "480p"
MAX_URL_CHARS = 4096
MAX_PROMPT_CHARS = 2000
SEED_RANGE = (-1, 2**63 - 1)

JOYPIX = "joypix"
LIPSYNC = "lipsync_studio"


class BadRequest(Exception):
    """The request does not follow the contract; str() is the message sent back."""


@dataclass
class Submission:
    provider: str  # JOYPIX or LIPSYNC
    model: str
    inputs: dict[str, tuple[str, str]]  # request field -> (role, URL)
    resolution: str
    prompt: str = ""
    seed: int = -1
    webhook: str = ""
    echo: dict[str, Any] = field(default_factory=dict)  # the inputs as sent (JoyPix's "inputs")
    order: str = ""  # how a dialog's two clips play: MULTI_ORDERS, or "" (JoyPix: at once)


# --- Validation -------------------------------------------------------------------------


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("Request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    return data


def _url(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS:
        raise BadRequest(f"{name} must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{name} must be an http(s) URL")
    return value


def _options(data: dict[str, Any]) -> tuple[str, str, int]:
    resolution = data.get("resolution", DEFAULT_RESOLUTION)
    if resolution is None:
        resolution = DEFAULT_RESOLUTION
    if resolution not in RESOLUTIONS:
        raise BadRequest(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    prompt = data.get("prompt") or ""
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt must be a string of at most {MAX_PROMPT_CHARS} characters")
    seed = data.get("seed", -1)
    if seed is None:
        seed = -1
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int)
        or not (SEED_RANGE[0] <= seed <= SEED_RANGE[1])
    ):
        raise BadRequest("seed must be an integer (-1 for random)")
    return resolution, prompt, seed


def _drawn_seed() -> int:
    return secrets.randbelow(2**31)


def parse_joypix(body: bytes, model: str = JOYPIX_MODEL) -> Submission:
    data = parse_json_object(body)
    inputs = {
        name: (role, _url(data, name, required=True)) for name, role in JOYPIX_MODELS[model].items()
    }
    resolution, prompt, seed = _options(data)
    echo = {name: url for name, (_role, url) in inputs.items()}
    # The sandbox draws a seed for -1 and reports it in "inputs", as a provider
    # that says which seed it used would (JoyPix's page does not say it does).
    echo.update(resolution=resolution, prompt=prompt, seed=seed if seed >= 0 else _drawn_seed())
    return Submission(
        provider=JOYPIX,
        model=model,
        inputs=inputs,  # type: ignore[arg-type]
        resolution=resolution,
        prompt=prompt,
        seed=seed,
        echo=echo,
    )


def parse_lipsync(model: str, body: bytes) -> Submission:
    data = parse_json_object(body)
    webhook = _url(data, "webhook", required=False) or ""
    form = data.get("formState")
    if form is None:
        raise BadRequest("formState is required")
    if not isinstance(form, dict):
        raise BadRequest("formState must be an object")
    inputs: dict[str, tuple[str, str]] = {}
    for name, role in LIPSYNC_MODELS[model].items():
        url = _url(form, name, required=name not in LIPSYNC_OPTIONAL)
        if url is not None:
            inputs[name] = (role, url)
    resolution, prompt, seed = _options(form)
    order = _order(form) if model == "lipsync-image-multi" else ""
    return Submission(
        provider=LIPSYNC,
        model=model,
        inputs=inputs,
        resolution=resolution,
        prompt=prompt,
        seed=seed,
        webhook=webhook,
        echo=dict(form),
        order=order,
    )


def _order(form: dict[str, Any]) -> str:
    order = form.get("order")
    if order is None:
        return SEQUENTIAL
    if order not in MULTI_ORDERS:
        raise BadRequest(f"order must be one of {', '.join(MULTI_ORDERS)}")
    return order


# --- Answers ----------------------------------------------------------------------------


def error_answer(provider: str, status: int, message: str) -> dict[str, Any]:
    """An error's body, as `provider` words it."""
    if provider == JOYPIX:
        return joypix_envelope(status, message)
    return lipsync_error(message)


def submitted(task: Task) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer to the submit that created `task`, and the same answer without
    the task's id (the submit_malformed fault's "no_id")."""
    if task.provider == JOYPIX:
        answer = joypix_submitted(task.id, model=task.model)
        return answer, joypix_envelope(0, "success", {})
    return lipsync_submitted(task.id), {"status": "processing"}


def task_answer(task: Task, output_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A status request's answer about `task`, and the same without its id (the
    poll_malformed fault's "no_id")."""
    if task.provider == JOYPIX:
        return joypix_task(task, output_url), joypix_envelope(0, "success", {})
    return lipsync_job(task, output_url), {"model": task.model, "output": None}


def joypix_envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def joypix_submitted(task_id: str, *, model: str = JOYPIX_MODEL) -> dict[str, Any]:
    """Motion-2-Dialog's page answers {task_id}; motion-2's answer also carries
    status "submitted" (../shared/provider-facts.md)."""
    data: dict[str, Any] = {"task_id": task_id}
    if model == JOYPIX_PHOTO_MODEL:
        data["status"] = "submitted"
    return joypix_envelope(0, "success", data)


def joypix_task(task: Task, output_url: str) -> dict[str, Any]:
    return joypix_envelope(
        0,
        "success",
        {
            "task_id": task.id,
            "inputs": json.dumps(task.echo),
            "model": task.model,
            "status": task.status,
            "error": task.error,
            "video_url": output_url if task.status == "completed" else "",
        },
    )


def lipsync_error(message: str) -> dict[str, Any]:
    return {"error": message}


def lipsync_submitted(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "status": "processing"}


def lipsync_job(task: Task, output_url: str, *, status: str | None = None) -> dict[str, Any]:
    """GET /api/v1/jobs/{id}, and the webhook's body. lipsync.studio has no
    "submitted": a task not yet started is "processing"."""
    status = status or ("processing" if task.status == "submitted" else task.status)
    completed = status == "completed"
    return {
        "id": task.id,
        "model": task.model,
        "status": status,
        "output": output_url if completed else None,
        "error": task.error if status == "failed" else "",
        "executionTime": task.execution_ms if completed else None,
        "timings": None,
    }
