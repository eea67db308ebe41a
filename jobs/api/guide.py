"""What the studio's API page shows a member: how to authenticate, every
endpoint of both contracts (read from their OpenAPI documents, so a new
route shows up by itself), today's prices from the Rate rows, examples in
curl, Python and JavaScript filled in with this studio's address, the
limits and the error codes. Plain data for templates/jobs/api_guide.html."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from jobs.credits.ledger import Balance, credits_balances
from jobs.credits.pricing import NoRate, quote, rate_current, terms_text
from jobs.models import JobMode, Pool, Resolution
from jobs.providers import catalogue
from jobs.studio.forms import providers_for
from jobs.studio.upload_limits import request_limit
from jobs.studio.uploads import MB

from . import joypix, lipsync
from .errors import CODES
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import KEEP_FOR
from .middleware import API_FILES
from .services import MODEL_MODES

# The seconds the examples' price is worked out for.
EXAMPLE_SECONDS = 10

# What each operation takes and answers, in a line; the summary comes from
# the OpenAPI document, so an operation missing here still gets listed.
DETAILS = {
    "POST /api/v1/lipsync-video": "{webhook?, formState: {video, audio, mask_image?, resolution?, "
    'prompt?, seed?, provider?}} → {id, status: "processing"}',
    "POST /api/v1/lipsync-image": "{webhook?, formState: {image, audio, resolution?, prompt?, "
    "seed?, provider?}} → {id, status}",
    "POST /api/v1/lipsync-image-multi": "{webhook?, formState: {image, left_audio, right_audio, "
    'order?: "meanwhile" | "sequential", …}} → {id, status}',
    "GET /api/v1/jobs": "?status=processing|completed|failed, ?mode=, ?limit= (≤ 100), "
    "?cursor= → {jobs: […], next_cursor}",
    "GET /api/v1/jobs/{job_id}": "→ {id, model, status, output, error, executionTime, timings}; "
    "output is a signed link to the video once completed",
    "POST /api/v1/jobs/{job_id}/cancel": "→ the job, its credits given back; 409 once it was "
    "sent to its provider",
    "POST /api/v1/quote": "{model, formState} or {model, seconds, formState: {resolution}} → "
    "{credits, usd, billed_seconds, units, available, expected_seconds}; nothing is held",
    "GET /api/v1/me": "→ the key's name, the member, both pools' balances",
    "POST /v1/lip-sync/motion-2-dialog": "JoyPix's body {left_audio_url, right_audio_url, "
    "image_url, resolution?, prompt?, seed?, provider?} → {code: 0, message, data: {task_id}}",
    "POST /v1/lip-sync/motion-2": "JoyPix's single-speaker body {audio_url, image_url, "
    "resolution?, prompt?, seed?, provider?} → {code: 0, message, data: {task_id}}",
    "GET /v1/tasks/{task_id}": "→ {code: 0, message, data: {task_id, inputs, model, "
    "status: submitted|processing|completed|failed, error, video_url}}",
}
OUTPUT_ENDPOINT = (
    "GET",
    "/api/v1/outputs/{token}/{name}",
    "A finished job's video (the output link)",
    "No key needed: the signed token is the key. Serves HTTP Range, so players seek.",
)
# (status, when); the code is errors.CODES' unless the row names others.
ERRORS = [
    (400, "", "The body is not valid JSON."),
    (401, "", "No valid key: missing, malformed, unknown or revoked (one answer for all)."),
    (401, "key_expired", "The key's expiry date has passed."),
    (
        402,
        "key_budget_exceeded",
        "Short of API credits (the error carries needed and available), or over the key's "
        "budget for its period (it says the budget and when it renews).",
    ),
    (
        403,
        "mode_not_allowed, provider_not_allowed",
        "The key may not make this kind of video or use this provider.",
    ),
    (404, "", "No such job, or another member's; an unknown path."),
    (409, "not_cancellable, conflict", "The job was already sent; a duplicate still answering."),
    (413, "", "The body is over its limit (refused before it is read)."),
    (415, "", "Neither application/json nor multipart/form-data."),
    (416, "", "A Range outside the output video."),
    (
        422,
        "invalid_request, invalid_url, invalid_file, idempotency_key_reused",
        "A field is wrong, cannot be fetched or does not decode (field names it); an "
        "Idempotency-Key reused with another body.",
    ),
    (
        429,
        "too_many_in_flight",
        "Over the key's rate limit (wait Retry-After seconds), or too many of its jobs running.",
    ),
]
ERROR_SHAPE = (
    '{"error": {"code": "invalid_request", "message": "This field is required.", '
    '"field": "formState.audio"}}'
)
JOYPIX_ERROR_SHAPE = '{"code": 422, "message": "image_url: This field is required.", "data": null}'


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    detail: str


@dataclass(frozen=True)
class Contract:
    name: str
    note: str
    docs_url: str
    openapi_url: str
    endpoints: list[Endpoint]


@dataclass(frozen=True)
class Price:
    resolution: str
    terms: str  # "2 credits per second, 5 s minimum"; "" without a rate
    usd_per_unit: str


@dataclass(frozen=True)
class PriceRow:
    mode: str  # "Talking photo"
    endpoints: list[str]
    provider: str  # the `provider` value
    provider_label: str
    model: str
    default: bool
    prices: list[Price]


@dataclass(frozen=True)
class Example:
    title: str
    intro: str
    curl: str
    python: str
    javascript: str


@dataclass(frozen=True)
class ApiGuide:
    base_url: str
    api_balance: Balance
    studio_balance: Balance
    contracts: list[Contract]
    prices: list[PriceRow]
    examples: list[Example]
    example_cost: str  # what the examples' job costs, in words
    limits: list[tuple[str, str]]
    errors: list[tuple[int, str, str]]
    error_shape: str
    joypix_error_shape: str


def api_guide(user: AbstractBaseUser) -> ApiGuide:
    """Everything the API page shows `user`, with this studio's address,
    prices in force now and their own balances."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    balances = credits_balances(user=user)
    return ApiGuide(
        base_url=base,
        api_balance=balances[Pool.API],
        studio_balance=balances[Pool.STUDIO],
        contracts=contracts_list(),
        prices=price_rows(),
        examples=examples_for(base=base),
        example_cost=example_cost(),
        limits=limits_list(),
        errors=[(status, codes or CODES[status], when) for status, codes, when in ERRORS],
        error_shape=ERROR_SHAPE,
        joypix_error_shape=JOYPIX_ERROR_SHAPE,
    )


@cache
def contracts_list() -> list[Contract]:
    """Both contracts' operations as their OpenAPI documents declare them
    (the routes do not change while the process runs)."""
    studio = _endpoints(lipsync.api) + [Endpoint(*OUTPUT_ENDPOINT)]
    return [
        Contract(
            name="lipsync.studio contract",
            note="lipsync.studio's own API, unchanged, plus your job list, cancel, quote and /me.",
            docs_url="/api/v1/docs",
            openapi_url="/api/v1/openapi.json",
            endpoints=studio,
        ),
        Contract(
            name="JoyPix contract",
            note="JoyPix's Motion-2-Dialog API, unchanged: a JoyPix script works by changing "
            "its base URL and key. Answers and errors use JoyPix's envelope.",
            docs_url="/v1/docs",
            openapi_url="/v1/openapi.json",
            endpoints=_endpoints(joypix.api),
        ),
    ]


def _endpoints(api) -> list[Endpoint]:
    found = []
    for path, operations in api.get_openapi_schema()["paths"].items():
        for method, operation in operations.items():
            key = f"{method.upper()} {path}"
            found.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    summary=operation.get("summary", ""),
                    detail=DETAILS.get(key, ""),
                )
            )
    return found


def price_rows() -> list[PriceRow]:
    """Per kind of video, each provider that makes it (the Studio's first is
    the default), with the rate in force now at each resolution."""
    rows = []
    for mode in JobMode:
        endpoints = [model for model, m in MODEL_MODES.items() if m == mode]
        for index, (slug, label) in enumerate(providers_for(mode)):
            model = catalogue.model_for(slug, mode)
            rows.append(
                PriceRow(
                    mode=mode.label,
                    endpoints=endpoints,
                    provider=slug,
                    provider_label=label,
                    model=model,
                    default=index == 0,
                    prices=[_price(slug, model, res) for res in Resolution.values],
                )
            )
    return rows


def _price(provider: str, model: str, resolution: str) -> Price:
    try:
        rate = rate_current(provider=provider, model=model, resolution=resolution)
    except NoRate:
        return Price(resolution=resolution, terms="", usd_per_unit="")
    terms = terms_text(
        credits_per_unit=rate.credits_per_unit,
        unit_seconds=rate.unit_seconds,
        min_seconds=rate.min_seconds,
    )
    return Price(resolution=resolution, terms=terms, usd_per_unit=f"${rate.usd_per_unit:.2f}")


def example_cost() -> str:
    """The examples' talking photo, priced now: "20 credits for a 10 s clip at 480p"."""
    mode = JobMode.TALKING_PHOTO
    slug = providers_for(mode)[0][0]
    try:
        q = quote(
            provider=slug,
            model=catalogue.model_for(slug, mode),
            resolution="480p",
            seconds=EXAMPLE_SECONDS,
        )
    except NoRate:
        return "no price is set for it yet"
    return (
        f"{q.credits:,} credit{'' if q.credits == 1 else 's'} for a {EXAMPLE_SECONDS} s clip "
        f"at 480p on {catalogue.label_of(slug)}"
    )


def limits_list() -> list[tuple[str, str]]:
    rate = settings.API_RATE_LIMIT_PER_MINUTE
    link_hours = settings.API_OUTPUT_LINK_MAX_AGE / 3600
    return [
        ("Requests", f"{rate:,} a minute per key; then 429 with a Retry-After header."),
        (
            "Uploads",
            f"Each file up to {settings.MAX_UPLOAD_MB:,} MB; a multipart request up to "
            f"{request_limit(API_FILES) // MB:,} MB ({API_FILES} files and the fields); a JSON "
            f"body up to {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // MB} MB. Larger: 413, before "
            "any of it is read.",
        ),
        (
            "Media",
            f"Audio up to {settings.MAX_MEDIA_SECONDS // 60} minutes; files by URL are "
            "downloaded only from public addresses and checked like uploads.",
        ),
        (
            IDEMPOTENCY_HEADER,
            f"On any POST: a retry with the same key and body within "
            f"{KEEP_FOR.total_seconds() / 3600:g} h gets the first answer and makes nothing; "
            "the same key with another body gets 422.",
        ),
        ("Output links", f"Work for {link_hours:g} h; ask for the job again for a fresh one."),
    ]


def examples_for(*, base: str) -> list[Example]:
    return [
        Example(
            title="Make a talking photo and wait for it",
            intro="Send the photo and the audio as public URLs; the studio downloads them. "
            "Then ask for the job until it is no longer processing.",
            curl=CURL_SUBMIT.replace("{base}", base),
            python=PYTHON_SUBMIT.replace("{base}", base),
            javascript=JS_SUBMIT.replace("{base}", base),
        ),
        Example(
            title="Send files instead of URLs",
            intro="The same fields as a multipart/form-data request (formState's flat), "
            "continuing the example above.",
            curl=CURL_UPLOAD.replace("{base}", base),
            python=PYTHON_UPLOAD.replace("{base}", base),
            javascript=JS_UPLOAD.replace("{base}", base),
        ),
        Example(
            title="A JoyPix script, pointed at the studio",
            intro="JoyPix's body and envelope; only the base URL and the key change.",
            curl=CURL_JOYPIX.replace("{base}", base),
            python=PYTHON_JOYPIX.replace("{base}", base),
            javascript=JS_JOYPIX.replace("{base}", base),
        ),
    ]


CURL_SUBMIT = """\
curl -s {base}/api/v1/lipsync-image \\
  -H "Authorization: Bearer $STUDIO_API_KEY" \\
  -H "Content-Type: application/json" \\
  -H "Idempotency-Key: $(uuidgen)" \\
  -d '{"formState": {"image": "https://example.com/face.jpg",
                     "audio": "https://example.com/voice.mp3",
                     "resolution": "480p"}}'
# → {"id": "…", "status": "processing"}

curl -s {base}/api/v1/jobs/JOB_ID -H "Authorization: Bearer $STUDIO_API_KEY"
# → {"id": "…", "status": "completed", "output": "{base}/api/v1/outputs/…", …}"""

PYTHON_SUBMIT = """\
import os, time, requests

base = "{base}/api/v1"
api = requests.Session()
api.headers["Authorization"] = f"Bearer {os.environ['STUDIO_API_KEY']}"

job = api.post(f"{base}/lipsync-image", json={"formState": {
    "image": "https://example.com/face.jpg",
    "audio": "https://example.com/voice.mp3",
    "resolution": "480p",
}}).json()
while (job := api.get(f"{base}/jobs/{job['id']}").json())["status"] == "processing":
    time.sleep(5)
print(job["output"] or job["error"])"""

JS_SUBMIT = """\
const base = "{base}/api/v1";
const headers = { Authorization: `Bearer ${process.env.STUDIO_API_KEY}` };

let job = await (await fetch(`${base}/lipsync-image`, {
  method: "POST",
  headers: { ...headers, "Content-Type": "application/json" },
  body: JSON.stringify({ formState: {
    image: "https://example.com/face.jpg",
    audio: "https://example.com/voice.mp3",
    resolution: "480p",
  } }),
})).json();
while (job.status === "processing") {
  await new Promise((r) => setTimeout(r, 5000));
  job = await (await fetch(`${base}/jobs/${job.id}`, { headers })).json();
}
console.log(job.output ?? job.error);"""

CURL_UPLOAD = """\
curl -s {base}/api/v1/lipsync-image \\
  -H "Authorization: Bearer $STUDIO_API_KEY" \\
  -F image=@face.jpg -F audio=@voice.mp3 -F resolution=480p"""

PYTHON_UPLOAD = """\
files = {"image": open("face.jpg", "rb"), "audio": open("voice.mp3", "rb")}
job = api.post(f"{base}/lipsync-image", files=files, data={"resolution": "480p"}).json()"""

JS_UPLOAD = """\
import { readFile } from "node:fs/promises";

const form = new FormData();
form.append("image", new Blob([await readFile("face.jpg")]), "face.jpg");
form.append("audio", new Blob([await readFile("voice.mp3")]), "voice.mp3");
form.append("resolution", "480p");
const job = await (await fetch(`${base}/lipsync-image`, {
  method: "POST", headers, body: form,
})).json();"""

CURL_JOYPIX = """\
curl -s {base}/v1/lip-sync/motion-2-dialog \\
  -H "Authorization: Bearer $STUDIO_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"image_url": "https://example.com/two.jpg",
       "left_audio_url": "https://example.com/left.mp3",
       "right_audio_url": "https://example.com/right.mp3"}'
# → {"code": 0, "message": "success", "data": {"task_id": "…"}}

curl -s {base}/v1/tasks/TASK_ID -H "Authorization: Bearer $STUDIO_API_KEY"
"""

PYTHON_JOYPIX = """\
import os, requests

base = "{base}"  # instead of JoyPix's address
headers = {"Authorization": f"Bearer {os.environ['STUDIO_API_KEY']}"}
answer = requests.post(f"{base}/v1/lip-sync/motion-2-dialog", headers=headers, json={
    "image_url": "https://example.com/two.jpg",
    "left_audio_url": "https://example.com/left.mp3",
    "right_audio_url": "https://example.com/right.mp3",
}).json()
task = requests.get(f"{base}/v1/tasks/{answer['data']['task_id']}", headers=headers).json()"""

JS_JOYPIX = """\
const base = "{base}"; // instead of JoyPix's address
const headers = { Authorization: `Bearer ${process.env.STUDIO_API_KEY}` };
const answer = await (await fetch(`${base}/v1/lip-sync/motion-2-dialog`, {
  method: "POST",
  headers: { ...headers, "Content-Type": "application/json" },
  body: JSON.stringify({
    image_url: "https://example.com/two.jpg",
    left_audio_url: "https://example.com/left.mp3",
    right_audio_url: "https://example.com/right.mp3",
  }),
})).json();
const task = await (await fetch(`${base}/v1/tasks/${answer.data.task_id}`, { headers })).json();"""
