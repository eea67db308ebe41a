"""JoyPix's contract under /v1/ (../shared/seeds/joypix-motion-2-dialog-api.txt):
POST /v1/lip-sync/motion-2-dialog, POST /v1/lip-sync/motion-2 (its
single-speaker model, ../shared/provider-facts.md) and GET /v1/tasks/{task_id},
in JoyPix's envelope `{code, message, data}` (errors too: `code` is the HTTP
status). Same keys and API credits as /api/v1/."""

from __future__ import annotations

from .base import ContractApi, body_doc, json_answer, read_body
from .errors import ApiError
from .idempotency import answer_keep, idempotent
from .schemas import (
    JoyPixDialogRequest,
    JoyPixError,
    JoyPixPhotoRequest,
    JoyPixSubmitAnswer,
    JoyPixTaskAnswer,
)
from .services import MODEL_INPUTS, Submission, api_job_submit, job_of_caller, joypix_task

api = ContractApi(
    title="Lipsync Studio API (JoyPix contract)",
    version="1",
    description=(
        "JoyPix's Motion-2-Dialog and Motion-2 contract, served by the team's studio on the "
        "member's API credits. Answers and errors use JoyPix's envelope `{code, message, data}`."
    ),
    urls_namespace="joypix_v1",
    body_schemas=(JoyPixDialogRequest, JoyPixPhotoRequest),
)

ERRORS = {code: JoyPixError for code in (400, 401, 402, 403, 409, 413, 415, 422, 429)}


@api.post(
    "/lip-sync/motion-2-dialog",
    response={200: JoyPixSubmitAnswer, **ERRORS},
    summary="Photo + two audios → a dialog",
    openapi_extra=body_doc(JoyPixDialogRequest),
)
def motion_2_dialog(request):
    return _submit(request, model="motion-2-dialog", schema=JoyPixDialogRequest)


@api.post(
    "/lip-sync/motion-2",
    response={200: JoyPixSubmitAnswer, **ERRORS},
    summary="Photo + one audio → a talking photo",
    openapi_extra=body_doc(JoyPixPhotoRequest),
)
def motion_2(request):
    return _submit(request, model="motion-2", schema=JoyPixPhotoRequest)


def _submit(request, *, model: str, schema):
    key = request.auth

    def work():
        body, files = read_body(request, schema)
        inputs = {name: files.get(name, getattr(body, name)) for name in MODEL_INPUTS[model]}
        sub = Submission(
            model=model,
            inputs=inputs,
            resolution=body.resolution,
            prompt=body.prompt,
            seed=body.seed,
            provider=body.provider or "",
            prefix="",
        )
        job = api_job_submit(key=key, sub=sub, made=made)
        return 200, accepted(job), job

    def accepted(job) -> dict:
        return {"code": 0, "message": "success", "data": {"task_id": str(job.uuid)}}

    def made(job) -> None:  # in the job's transaction: a crash after it leaves the answer
        answer_keep(request, owner=key.owner, status=200, body=accepted(job), job=job)

    status, answer = idempotent(
        request, owner=key.owner, work=work, error_body=ApiError.joypix_body
    )
    return json_answer(status, answer)


@api.get(
    "/tasks/{task_id}",
    response={200: JoyPixTaskAnswer, 401: JoyPixError, 404: JoyPixError, 429: JoyPixError},
    summary="A task's status",
)
def task(request, task_id: str):
    job = job_of_caller(key=request.auth, public_id=task_id)
    return json_answer(200, {"code": 0, "message": "success", "data": joypix_task(job)})
