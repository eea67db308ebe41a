"""JoyPix's contract under /v1/ (../shared/seeds/joypix-motion-2-dialog-api.txt):
POST /v1/lip-sync/motion-2-dialog and GET /v1/tasks/{task_id}, in JoyPix's
envelope `{code, message, data}` (errors too: `code` is the HTTP status).
Same keys and API credits as /api/v1/."""

from __future__ import annotations

from .base import ContractApi, body_doc, json_answer, read_body
from .errors import ApiError
from .idempotency import idempotent
from .schemas import JoyPixDialogRequest, JoyPixError, JoyPixSubmitAnswer, JoyPixTaskAnswer
from .services import MODEL_INPUTS, Submission, api_job_submit, job_of_caller, joypix_task

MODEL = "motion-2-dialog"

api = ContractApi(
    title="Lipsync Studio API (JoyPix contract)",
    version="1",
    description=(
        "JoyPix's Motion-2-Dialog contract, served by the team's studio on the member's API "
        "credits. Answers and errors use JoyPix's envelope `{code, message, data}`."
    ),
    urls_namespace="joypix_v1",
    body_schemas=(JoyPixDialogRequest,),
)

ERRORS = {code: JoyPixError for code in (400, 401, 402, 409, 413, 415, 422, 429)}


@api.post(
    "/lip-sync/motion-2-dialog",
    response={200: JoyPixSubmitAnswer, **ERRORS},
    summary="Photo + two audios → a dialog",
    openapi_extra=body_doc(JoyPixDialogRequest),
)
def motion_2_dialog(request):
    key = request.auth

    def work():
        body, files = read_body(request, JoyPixDialogRequest)
        inputs = {name: files.get(name, getattr(body, name)) for name in MODEL_INPUTS[MODEL]}
        sub = Submission(
            model=MODEL,
            inputs=inputs,
            resolution=body.resolution,
            prompt=body.prompt,
            seed=body.seed,
            provider=body.provider or "",
            prefix="",
        )
        job = api_job_submit(key=key, sub=sub)
        return 200, {"code": 0, "message": "success", "data": {"task_id": str(job.uuid)}}, job

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
