"""The lipsync.studio contract under /api/v1/ (../shared/seeds/
lipsync-studio-api.txt), and what the studio adds to it: the caller's job
list, cancel, quote and /me."""

from __future__ import annotations

from ninja import Query, Schema
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from .base import ContractApi, body_doc, json_answer, read_body
from .errors import ApiError
from .idempotency import answer_keep, idempotent
from .schemas import (
    Accepted,
    ErrorAnswer,
    JobAnswer,
    JobList,
    JoyPixDialogRequest,
    JoyPixPhotoRequest,
    LipsyncImageForm,
    LipsyncImageMultiForm,
    LipsyncImageMultiRequest,
    LipsyncImageRequest,
    LipsyncVideoForm,
    LipsyncVideoRequest,
    MeAnswer,
    QuoteAnswer,
    QuoteRequest,
)
from .services import (
    MODEL_INPUTS,
    PAGE_SIZE,
    Submission,
    api_job_cancel,
    api_job_submit,
    api_quote,
    job_answer,
    job_of_caller,
    jobs_page,
    me_answer,
)

api = ContractApi(
    title="Lipsync Studio API",
    version="1",
    description=(
        "The lipsync.studio contract, served by the team's studio on the member's API "
        "credits. Authenticate with `Authorization: Bearer sk_...`. Errors are "
        '`{"error": {"code", "message", "field"?}}`.'
    ),
    urls_namespace="api_v1",
    body_schemas=(LipsyncVideoRequest, LipsyncImageRequest, LipsyncImageMultiRequest, QuoteRequest),
)

ERRORS = {code: ErrorAnswer for code in (400, 401, 402, 403, 409, 413, 415, 422, 429)}
READ_ERRORS = {code: ErrorAnswer for code in (401, 404, 422, 429)}
SUBMIT_MODELS = {
    "lipsync-video": LipsyncVideoRequest,
    "lipsync-image": LipsyncImageRequest,
    "lipsync-image-multi": LipsyncImageMultiRequest,
}

QUOTE_FORMS = {
    "lipsync-video": LipsyncVideoForm,
    "lipsync-image": LipsyncImageForm,
    "lipsync-image-multi": LipsyncImageMultiForm,
    "motion-2-dialog": JoyPixDialogRequest,
    "motion-2": JoyPixPhotoRequest,
}


def _submission(model: str, body, files: dict) -> Submission:
    form = body.formState
    inputs = {name: files.get(name, getattr(form, name, None)) for name in MODEL_INPUTS[model]}
    return Submission(
        model=model,
        inputs=inputs,
        resolution=form.resolution,
        prompt=form.prompt,
        seed=form.seed,
        order=getattr(form, "order", None) or "",
        provider=form.provider or "",
        webhook=body.webhook or "",
    )


def _submit(request, model: str):
    key = request.auth

    def answer(job) -> dict:
        return {"id": str(job.uuid), "status": "processing"}

    def made(job) -> None:  # in the job's transaction: a crash after it leaves the answer
        answer_keep(request, owner=key.owner, status=200, body=answer(job), job=job)

    def work():
        body, files = read_body(request, SUBMIT_MODELS[model], form_key="formState")
        job = api_job_submit(key=key, sub=_submission(model, body, files), made=made)
        return 200, answer(job), job

    return json_answer(*idempotent(request, owner=key.owner, work=work))


def _submit_route(model: str, summary: str):
    def view(request):
        return _submit(request, model)

    view.__name__ = model.replace("-", "_")
    api.post(
        f"/{model}",
        response={200: Accepted, **ERRORS},
        summary=summary,
        openapi_extra=body_doc(SUBMIT_MODELS[model]),
    )(view)


_submit_route("lipsync-video", "Video + new audio → the video lip-synced to it")
_submit_route("lipsync-image", "Photo + audio → a talking photo")
_submit_route("lipsync-image-multi", "Photo + two audios → a dialog")


class JobFilters(Schema):
    status: str = Field("", description="processing, completed or failed.")
    mode: str = Field("", description="dialog, talking_photo, video_dub, or a model name.")
    cursor: str = Field("", description="The next_cursor of the page before.")
    limit: int = Field(PAGE_SIZE, description="Jobs per page, 1 to 100.")


@api.get("/jobs", response={200: JobList, **READ_ERRORS}, summary="Your jobs, newest first")
def jobs(request, filters: Query[JobFilters]):
    return json_answer(200, jobs_page(key=request.auth, **filters.dict()))


@api.get("/jobs/{job_id}", response={200: JobAnswer, **READ_ERRORS}, summary="A job's status")
def job(request, job_id: str):
    return json_answer(200, job_answer(job_of_caller(key=request.auth, public_id=job_id)))


@api.post(
    "/jobs/{job_id}/cancel",
    response={200: JobAnswer, **READ_ERRORS, 409: ErrorAnswer},
    summary="Cancel a job not yet sent to its provider (its credits come back)",
)
def job_cancel(request, job_id: str):
    key = request.auth

    def work():
        job = api_job_cancel(key=key, public_id=job_id)
        return 200, job_answer(job), job

    return json_answer(*idempotent(request, owner=key.owner, work=work))


@api.post(
    "/quote",
    response={200: QuoteAnswer, **ERRORS},
    summary="What a job would cost, without making it",
    openapi_extra=body_doc(QuoteRequest),
)
def quote(request):
    key = request.auth

    def work():
        body, files = read_body(request, QuoteRequest, form_key="formState")
        form = {**(body.formState or {}), **{name: "uploaded-file" for name in files}}
        blank = dict.fromkeys(MODEL_INPUTS[body.model], "")  # files are not needed with seconds
        try:
            parsed = QUOTE_FORMS[body.model].model_validate(blank | form)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            field = "formState." + ".".join(map(str, first["loc"]))
            raise ApiError(422, first["msg"], field=field) from None
        sub = Submission(
            model=body.model,
            inputs={n: files.get(n, form.get(n)) for n in MODEL_INPUTS[body.model]},
            resolution=parsed.resolution,
            provider=parsed.provider or "",
            order=getattr(parsed, "order", None) or "",
        )
        return 200, api_quote(key=key, sub=sub, seconds=body.seconds), None

    return json_answer(*idempotent(request, owner=key.owner, work=work))


@api.get(
    "/me",
    response={200: MeAnswer, 401: ErrorAnswer, 429: ErrorAnswer},
    summary="This key, its member and both balances",
)
def me(request):
    return json_answer(200, me_answer(key=request.auth))
