"""lipsync.studio, following ../shared/seeds/lipsync-studio-api.txt: three
models behind POST /api/v1/<model> with {"webhook"?, "formState": {...}},
answered {"id", "status": "processing"}; then GET /api/v1/jobs/{id}.
lipsync-image-multi's fields (left_audio, right_audio, order) are from the
page's English edition (../shared/provider-facts.md)."""

from __future__ import annotations

import json
from typing import Any

from . import catalogue
from .base import (
    ProviderAdapter,
    SubmitRequest,
    TaskFields,
    TaskState,
    TaskStatus,
    UnsupportedRequest,
    request_inputs,
    task_path,
    valid_task_id,
)
from .http import NOT_SENT_AGAIN, ProviderOutcomeUnknown

SUBMIT_PATH = "/api/v1/{model}"
STATUS_PATH = "/api/v1/jobs/{task_id}"
MAX_WEBHOOK_BYTES = 64 * 1024

# Every field name the page uses: our name -> lipsync.studio's.
FIELDS = {
    "webhook": "webhook",
    "form": "formState",
    "resolution": "resolution",
    "prompt": "prompt",
    "seed": "seed",
    "order": "order",
    "id": "id",
    "status": "status",
    "output": "output",
    "error": "error",
}

# Per mode, the inputs of its model (catalogue.LIPSYNC_STUDIO.models; the
# model is also the endpoint's name) as {SubmitRequest attribute: formState field}.
INPUTS: dict[str, dict[str, str]] = {
    "video_dub": {"video_url": "video", "audio_url": "audio", "mask_url": "mask_image"},
    "talking_photo": {"image_url": "image", "audio_url": "audio"},
    "dialog": {
        "image_url": "image",
        "left_audio_url": "left_audio",
        "right_audio_url": "right_audio",
    },
}
OPTIONAL_INPUTS = frozenset({"mask_url"})

# lipsync-image-multi's `order`, our value -> lipsync.studio's. The page names
# "meanwhile" (both speak at once; billed on the longer clip) and bills any
# other value on the sum of the two. "sequential" (taking turns) is our
# reading of that other value: a correction is one line here.
DIALOG_ORDERS: dict[str, str] = {
    "sequential": "sequential",
    "meanwhile": "meanwhile",
}

STATES: dict[str, TaskState] = {
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
}
TASK_FIELDS = TaskFields(
    id=FIELDS["id"],
    status=FIELDS["status"],
    output=FIELDS["output"],
    error=FIELDS["error"],
    states=STATES,
    who="lipsync.studio",
    noun="job",
    output_noun="output",
)


class LipsyncStudioAdapter(ProviderAdapter):
    facts = catalogue.LIPSYNC_STUDIO

    def submit(self, req: SubmitRequest) -> str:
        model = self.model_for(req.mode)
        form: dict[str, Any] = request_inputs(req, INPUTS[req.mode], OPTIONAL_INPUTS)
        if req.mode == "dialog":
            if req.dialog_order not in DIALOG_ORDERS:
                raise UnsupportedRequest("This dialog job has no speaking order to send.")
            form[FIELDS["order"]] = DIALOG_ORDERS[req.dialog_order]
        form[FIELDS["resolution"]] = req.resolution  # default is 480p; say it anyway
        if req.prompt.strip():
            form[FIELDS["prompt"]] = req.prompt
        # The page gives no "random" value for seed: leave it out for -1.
        if req.seed >= 0:
            form[FIELDS["seed"]] = req.seed
        body: dict[str, Any] = {}
        if req.webhook_url:  # the page asks for HTTPS; the studio picks the URL
            body[FIELDS["webhook"]] = req.webhook_url
        body[FIELDS["form"]] = form

        answer = self.http.submit(SUBMIT_PATH.format(model=model), body)
        task_id = valid_task_id(answer.get(FIELDS["id"]))
        if task_id is None:
            raise ProviderOutcomeUnknown(f"lipsync.studio's answer had no job id; {NOT_SENT_AGAIN}")
        return task_id

    def status(self, task_id: str) -> TaskStatus:
        answer = self.http.get(task_path(STATUS_PATH, task_id))
        return self._task_status(answer, task_id, fields=TASK_FIELDS, raw=answer)

    @staticmethod
    def parse_webhook(body: bytes) -> str | None:
        return parse_webhook(body)


def parse_webhook(body: bytes) -> str | None:
    """The job id a webhook names, or None. Nothing else in it is trusted:
    it only means "this job may have changed; poll it"."""
    if len(body) > MAX_WEBHOOK_BYTES:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurd nesting
        return None
    if not isinstance(data, dict):
        return None
    return valid_task_id(data.get(FIELDS["id"]))
