"""JoyPix, two models behind one task API:

- Motion-2-Dialog, to the letter of ../shared/seeds/joypix-motion-2-dialog-api.txt:
  one photo + a left and a right audio -> a conversation video (dialog);
- Motion-2, from JoyPix's "Get started with API" page (../shared/provider-facts.md):
  one photo + one audio -> a talking photo.

Both are polled through GET /v1/tasks/{task_id}."""

from __future__ import annotations

from typing import Any

from . import catalogue
from .base import (
    ProviderAdapter,
    SubmitRequest,
    TaskFields,
    TaskState,
    TaskStatus,
    request_inputs,
    task_path,
    valid_task_id,
)
from .http import (
    NOT_SENT_AGAIN,
    ProviderMalformed,
    ProviderOutcomeUnknown,
    ProviderRejected,
    poll_error_for_status,
    submit_error_for_status,
)

# Per studio mode, the model's submit path (catalogue.JOYPIX.models names the model).
SUBMIT_PATHS = {
    "dialog": "/v1/lip-sync/motion-2-dialog",
    "talking_photo": "/v1/lip-sync/motion-2",
}
SUBMIT_PATH = SUBMIT_PATHS["dialog"]  # the name from before motion-2, for its callers
STATUS_PATH = "/v1/tasks/{task_id}"

# Every field name the page uses: our name -> JoyPix's. A correction is one line.
FIELDS = {
    # request body (our names are SubmitRequest's attributes)
    "left_audio_url": "left_audio_url",
    "right_audio_url": "right_audio_url",
    "audio_url": "audio_url",  # motion-2's one audio
    "image_url": "image_url",
    "resolution": "resolution",
    "prompt": "prompt",
    "seed": "seed",
    # answers: {"code", "message", "data": {"task_id", "status", "error", "video_url"}}
    "code": "code",
    "message": "message",
    "msg": "msg",  # the name JoyPix's generic result struct gives the message
    "data": "data",
    "task_id": "task_id",
    "status": "status",
    "error": "error",
    "video_url": "video_url",
}
# Per studio mode, the SubmitRequest attributes its model takes as inputs.
INPUTS: dict[str, tuple[str, ...]] = {
    "dialog": ("image_url", "left_audio_url", "right_audio_url"),
    "talking_photo": ("image_url", "audio_url"),
}

# The example answers "code": 0, its comment says "200 for success": both are.
SUCCESS_CODES = frozenset({0, 200})

STATES: dict[str, TaskState] = {
    "submitted": "pending",
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
}
TASK_FIELDS = TaskFields(
    id=FIELDS["task_id"],
    status=FIELDS["status"],
    output=FIELDS["video_url"],
    error=FIELDS["error"],
    states=STATES,
    who="JoyPix",
    noun="task",
    output_noun="a video URL",
)


def submit_body(req: SubmitRequest) -> dict[str, Any]:
    """The JSON body of a submit for `req` (a dialog for Motion-2-Dialog, a
    talking photo for Motion-2; the two take the same options): the one place
    it is built. UnsupportedRequest if an input is missing or the mode is not
    JoyPix's."""
    JoyPixAdapter.model_for(req.mode)
    names = {attr: FIELDS[attr] for attr in INPUTS[req.mode]}
    body: dict[str, Any] = request_inputs(req, names)
    body[FIELDS["resolution"]] = req.resolution  # default is 480p; say it anyway
    # prompt is optional without a default: leave it out rather than send "".
    if req.prompt.strip():
        body[FIELDS["prompt"]] = req.prompt
    # seed's documented default is -1 (random), the studio's "provider picks":
    # always sent, as in the page's example.
    body[FIELDS["seed"]] = req.seed
    return body


class JoyPixAdapter(ProviderAdapter):
    facts = catalogue.JOYPIX

    def submit(self, req: SubmitRequest) -> str:
        body = submit_body(req)
        # The answer may say data.status "submitted" beside task_id: only the id matters.
        answer = self.http.submit(SUBMIT_PATHS[req.mode], body)
        code = _code(answer)
        if code is None:
            raise ProviderOutcomeUnknown(f"JoyPix's answer had no status code; {NOT_SENT_AGAIN}")
        if code not in SUCCESS_CODES:
            raise _envelope_error(self, answer, code, submit=True)
        data = answer.get(FIELDS["data"])
        task_id = valid_task_id(data.get(FIELDS["task_id"])) if isinstance(data, dict) else None
        if task_id is None:
            raise ProviderOutcomeUnknown(f"JoyPix's answer had no task id; {NOT_SENT_AGAIN}")
        return task_id

    def status(self, task_id: str) -> TaskStatus:
        answer = self.http.get(task_path(STATUS_PATH, task_id))
        code = _code(answer)
        if code is None:
            raise ProviderMalformed("JoyPix's answer had no status code")
        if code not in SUCCESS_CODES:
            raise _envelope_error(self, answer, code, submit=False)
        data = answer.get(FIELDS["data"])
        if not isinstance(data, dict):
            raise ProviderMalformed("JoyPix's answer had no task data")
        return self._task_status(data, task_id, fields=TASK_FIELDS, raw=answer)


def _code(answer: dict[str, Any]) -> int | None:
    value = answer.get(FIELDS["code"])
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _message(answer: dict[str, Any]) -> str:
    """The envelope's message: examples name it `message`, JoyPix's generic
    result struct `msg`; the first non-empty string of the two."""
    for name in (FIELDS["message"], FIELDS["msg"]):
        value = answer.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _envelope_error(
    adapter: JoyPixAdapter, answer: dict[str, Any], code: int, *, submit: bool
) -> Exception:
    """An error envelope: codes shaped like HTTP statuses follow the same
    rules as HTTP statuses (429 may be retried, 500 leaves a submit's outcome
    unknown); any other code is a plain refusal with JoyPix's message."""
    message = _message(answer)
    message = adapter.http.redact(message) if message else ""
    message = message or f"JoyPix error code {code}"
    if 400 <= code < 600:
        rule = submit_error_for_status if submit else poll_error_for_status
        return rule(code, message)
    return ProviderRejected(message, code)
