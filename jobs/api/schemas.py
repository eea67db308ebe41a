"""Request and answer schemas of both contracts, as their pages show them;
the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

Resolution = Literal["480p", "720p"]
SEED_MIN, SEED_MAX = -1, 2**31 - 1
URL_HELP = "A public http(s) URL the studio downloads, or the file itself in a multipart request."


class _Form(Schema):
    # Fields the page does not list are ignored, as a provider would.
    model_config = ConfigDict(extra="ignore")

    resolution: Resolution = Field("480p", description='"480p" or "720p".')
    prompt: str = Field("", max_length=2000, description="Guidance for the style.")
    seed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX, description="-1: the provider picks.")
    provider: str | None = Field(
        None,
        description="Which of the studio's providers makes it (e.g. joypix, lipsync_studio); "
        "default: the first the Studio offers for this kind of video.",
    )


class LipsyncVideoForm(_Form):
    video: str = Field(description=URL_HELP)
    audio: str = Field(description=URL_HELP)
    mask_image: str | None = Field(None, description="Optional mask. " + URL_HELP)


class LipsyncImageForm(_Form):
    image: str = Field(description=URL_HELP)
    audio: str = Field(description=URL_HELP)


class LipsyncImageMultiForm(_Form):
    image: str = Field(description=URL_HELP)
    left_audio: str = Field(description=URL_HELP)
    right_audio: str = Field(description=URL_HELP)
    order: Literal["meanwhile", "sequential"] | None = Field(
        None,
        description='"meanwhile": both speak at once (billed on the longer clip, the default); '
        '"sequential": they take turns (billed on both).',
    )


class _Submit(Schema):
    webhook: str | None = Field(
        None, max_length=2000, description="Your callback URL; the result is POSTed there."
    )


class LipsyncVideoRequest(_Submit):
    formState: LipsyncVideoForm  # noqa: N815 - the contract's name


class LipsyncImageRequest(_Submit):
    formState: LipsyncImageForm  # noqa: N815


class LipsyncImageMultiRequest(_Submit):
    formState: LipsyncImageMultiForm  # noqa: N815


class Accepted(Schema):
    id: str = Field(description="The job's id (a UUID).")
    status: Literal["processing"]


class JobAnswer(Schema):
    id: str
    model: str
    status: Literal["processing", "completed", "failed"]
    output: str | None = Field(
        description="When completed: a signed, expiring link to the video (seekable)."
    )
    error: str
    executionTime: int | None  # noqa: N815 - the contract's name (ms)
    timings: None = None


class JobListItem(JobAnswer):
    mode: str
    provider: str
    resolution: str
    source: Literal["studio", "api"]
    pool: Literal["studio", "api"]
    credits_held: int
    credits_charged: int | None
    created_at: str


class JobList(Schema):
    jobs: list[JobListItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next, older page.")


class QuoteRequest(Schema):
    model_config = ConfigDict(extra="ignore")

    model: Literal[
        "lipsync-video", "lipsync-image", "lipsync-image-multi", "motion-2-dialog", "motion-2"
    ]
    seconds: float | None = Field(
        None, gt=0, le=1200, description="The billed duration, instead of the files."
    )
    formState: dict | None = Field(  # noqa: N815
        None, description="The job's formState (its files are measured, nothing is kept)."
    )


class QuoteAnswer(Schema):
    credits: int
    usd: str
    billed_seconds: int
    units: int
    available: int = Field(description="API credits available now.")
    expected_seconds: float = Field(description="Expected processing time.")


class PoolBalance(Schema):
    balance: int
    held: int
    available: int


class MeAnswer(Schema):
    key: dict
    member: dict
    balances: dict[str, PoolBalance]


class ErrorDetail(Schema):
    code: str
    message: str
    field: str | None = None


class ErrorAnswer(Schema):
    error: ErrorDetail


# --- JoyPix -----------------------------------------------------------------------


class JoyPixDialogRequest(Schema):
    model_config = ConfigDict(extra="ignore")

    left_audio_url: str
    right_audio_url: str
    image_url: str
    resolution: Resolution = "480p"
    prompt: str = Field("", max_length=2000)
    seed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX)
    provider: str | None = None


class JoyPixPhotoRequest(Schema):
    """JoyPix's single-speaker model (motion-2): a talking photo."""

    model_config = ConfigDict(extra="ignore")

    audio_url: str
    image_url: str
    resolution: Resolution = "480p"
    prompt: str = Field("", max_length=2000)
    seed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX)
    provider: str | None = None


class JoyPixTaskId(Schema):
    task_id: str


class JoyPixSubmitAnswer(Schema):
    code: int
    message: str
    data: JoyPixTaskId


class JoyPixTask(Schema):
    task_id: str
    inputs: str
    model: str
    status: Literal["submitted", "processing", "completed", "failed"]
    error: str
    video_url: str


class JoyPixTaskAnswer(Schema):
    code: int
    message: str
    data: JoyPixTask


class JoyPixError(Schema):
    code: int
    message: str
    data: None = None
