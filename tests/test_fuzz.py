"""No page of the studio answers 5xx, whatever a member's browser sends.

Hypothesis makes query strings and form bodies for each page a member uses:
its own field names (with values of their sort, and any other) and made-up
ones, repeated keys, empty values, huge and negative numbers, dates at the
ends of the calendar, unicode (NUL included), and for the forms a few bytes
of anything as files with any names, in each encoding a browser uses; a form
body starts from nothing or from a form that makes a job. The requests go
through the whole stack as the member (the test client, with
raise_request_exception=False, so a server error is an answer to look at).

The run is bounded and repeatable: the "ci" profile (the default) makes 300
examples per page, derandomized. HYPOTHESIS_PROFILE=quick makes 30 while
working on this file; HYPOTHESIS_PROFILE=deep makes 3000 random ones.
The number of requests made is printed (with -s) and written to
tests/artifacts/fuzz.txt."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote, urlencode

import hypothesis
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobState
from jobs.studio.uploads import upload_stage
from tests.conftest import ARTIFACTS
from tests.media_factory import make_audio, make_image

pytestmark = pytest.mark.django_db

# No example database: the ci profile is derandomized, and a deep run prints
# the blob that reproduces what it found.
hypothesis.settings.register_profile(
    "ci", max_examples=300, derandomize=True, database=None, deadline=None
)
hypothesis.settings.register_profile(
    "quick", max_examples=30, derandomize=True, database=None, deadline=None
)
hypothesis.settings.register_profile(
    "deep", max_examples=3000, database=None, deadline=None, print_blob=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ = hypothesis.settings(
    hypothesis.settings.get_profile(PROFILE),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- what a browser (or someone typing addresses) may send ---------------------------------

ROLES = ["image", "audio", "left_audio", "right_audio", "video", "mask"]

EDGES = [
    "", " ", "0", "-1", "1", "2", "+3", "1_000", "007", "1.5", "1e400", "nan", "inf",
    str(2**31), str(2**63 - 1), str(2**63), str(-(2**63) - 1), "9" * 30, "9" * 5000,
    "²", "١٢", "½", "\x00", "\x00abc", "%00", "'; --", "<script>alert(1)</script>",
    "\u202egnp.exe", "é" * 300, "🎬" * 50, "a" * 5000,
    "2026-03-12", "9999-12-31", "0001-01-01", "10000-01-01", "2026-02-30", "2026-13-01",
    "dialog", "talking_photo", "video_dub", "opera",
    "joypix", "lipsync_studio", "480p", "720p", "1080p", "studio", "api",
    "20260312T120000000000.1", "99991231T235959999999.9223372036854775808",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(EDGES),
    st.integers().map(str),
    st.text(max_size=40),
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**62)),
    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63)]),
).map(str)
NUMBERS = st.one_of(NUMBERS, st.sampled_from(["²", "١٢", "1e3", " 7 ", "+7", "1_0", "0x10"]))
DATES = st.one_of(st.dates(), st.sampled_from([date.min, date.max])).map(str)
CURSORS = st.builds(lambda moment, pk: f"{moment:%Y%m%dT%H%M%S%f}.{pk}", st.datetimes(), NUMBERS)
# Values of the right sort for each field, so that each field's own
# checks are reached; any other value too (VALUES).
SORTS = {
    "mode": st.sampled_from(["dialog", "talking_photo", "video_dub"]),
    "provider": st.sampled_from(["joypix", "lipsync_studio"]),
    "resolution": st.sampled_from(["480p", "720p"]),
    "pool": st.sampled_from(["studio", "api"]),
    "seed": NUMBERS,
    "page": NUMBERS,
    "since": NUMBERS,
    "owner": NUMBERS,
    "date_from": DATES,
    "date_to": DATES,
    "before": CURSORS,
    "newest": NUMBERS,
    "oldest": NUMBERS,
    "jobs-state": st.sampled_from(["live", "queued", "processing", "completed", "failed"]),
    "jobs-mode": st.sampled_from(["dialog", "talking_photo", "video_dub"]),
    "jobs-provider": st.sampled_from(["joypix", "lipsync_studio"]),
    "jobs-source": st.sampled_from(["studio", "api"]),
    **{f"{role}_upload": NUMBERS for role in ROLES},
}
STUDIO_NAMES = ["mode", "provider", "resolution", "prompt", "seed"] + [
    f"{role}_upload" for role in ROLES
]


def pairs(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Field names of the page (and others), each maybe repeated, with values
    of their own sort or any other."""
    other = st.tuples(st.text(min_size=1, max_size=12), VALUES)
    if not names:
        return st.lists(other, max_size=6)
    known = st.sampled_from(names).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(SORTS.get(name, VALUES), VALUES))
    )
    return st.lists(st.one_of(known, known, other), max_size=10)


def as_dict(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated keys stay repeated (the test client sends a list as one key per item)."""
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name, []).append(value)
    return out


FILE_NAMES = st.one_of(
    st.text(min_size=1, max_size=60),
    st.sampled_from(
        ["photo\u202egnp.exe", "a." + "é" * 200, "b" * 300 + ".png", "c" * 1000, ".", "..", "x\\y"]
    ),
)
FILES = st.lists(
    st.tuples(st.sampled_from(ROLES), FILE_NAMES, st.binary(max_size=2048)), max_size=2
)


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]):
    """A multipart body as a browser writes it, file names and all (the test
    client's own files would cut names to 255 characters)."""
    boundary = "----FuzzBoundaryx7MA4YWxkTrZu0gW"

    def quoted(text: str) -> str:  # what browsers escape in a part's header
        return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

    body = b""
    for name, value in fields:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(name)}"\r\n\r\n'
            ).encode()
            + value.encode("utf-8", "surrogatepass")
            + b"\r\n"
        )
    for name, filename, content in files:
        body += (
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{quoted(name)}"; filename="{quoted(filename)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --- the pages ---------------------------------------------------------------------------------


@dataclass
class Member:
    client: Client
    form: list[tuple[str, str]]  # a form that makes a job: fuzzing starts from it or from nothing


@pytest.fixture
def member(client, alice, bob, settings, tmp_path) -> Member:
    """Alice, signed in, with credits, staged uploads, a finished job in the
    gallery and an API key; Bob with uploads and an unshared job of his own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.MAX_UPLOAD_MB = 1
    credits_grant(user=alice, pool="studio", amount=500, key="fuzz:alice")
    photo = make_image(tmp_path / "photo.jpg", 320, 240, fmt="jpeg")
    clip = make_audio(tmp_path / "clip.mp3", 1.0)
    staged = {}
    for owner in (bob, alice):
        for kind, path in (("image", photo), ("audio", clip), ("audio", clip)):
            with open(path, "rb") as fh:
                uploaded = SimpleUploadedFile(path.name, fh.read())
            staged.setdefault(kind, []).append(
                upload_stage(owner=owner, kind=kind, uploaded=uploaded).pk
            )
    for owner, shared in ((alice, True), (bob, False)):
        Job.objects.create(
            owner=owner,
            mode="dialog",
            provider="joypix",
            provider_model="motion-2-dialog",
            resolution="480p",
            prompt="two friends chat",
            shared=shared,
            state=JobState.COMPLETED,
            input_seconds=3.0,
            credits_held=15,
            credits_charged=15,
            output="outputs/job.mp4",
            finished_at=timezone.now() - timedelta(days=1),
        )
    api_key_create(owner=alice, name="script")
    member_client = Client(raise_request_exception=False)
    member_client.force_login(alice)
    form = [
        ("mode", "dialog"),
        ("provider", "joypix"),
        ("resolution", "480p"),
        ("seed", "-1"),
        ("image_upload", str(staged["image"][-1])),
        ("left_audio_upload", str(staged["audio"][-2])),
        ("right_audio_upload", str(staged["audio"][-1])),
    ]
    return Member(client=member_client, form=form)


@pytest.fixture(scope="module")
def requests_made():
    """Requests made per page; written to tests/artifacts/fuzz.txt at the end."""
    counts: Counter[str] = Counter()
    yield counts
    if not counts:
        return
    lines = [f"{page}: {n} requests" for page, n in sorted(counts.items())]
    summary = (
        f"{sum(counts.values())} requests over {len(counts)} pages, no 5xx "
        f"(profile {PROFILE!r}, database {connection.vendor})"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fuzz.txt").write_text("\n".join([summary, *lines]) + "\n")
    print(f"\nfuzz: {summary}")


HX = [{}, {"HTTP_HX_REQUEST": "true"}]
# The Studio and a job's page answer a part by the element htmx replaces.
HX_PARTS = HX + [
    {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}
    for target in ("load-older", "job-list", "job-live")
]
HISTORY_NAMES = ["jobs-state", "jobs-mode", "jobs-provider", "jobs-source", "before"]
GET_PAGES = {
    "GET /": ("/", STUDIO_NAMES + HISTORY_NAMES),
    "GET /studio/form/": ("/studio/form/", STUDIO_NAMES),
    "GET /studio/cards/": ("/studio/cards/", ["since", "newest", "oldest", *HISTORY_NAMES]),
    "GET /gallery/": (
        "/gallery/",
        ["q", "mode", "provider", "owner", "resolution", "date_from", "date_to", "before"],
    ),
    "GET /credits/": ("/credits/", ["pool", "page"]),
    "GET /api-keys/": ("/api-keys/", []),
    "GET /developers/": ("/developers/", []),
}
POST_PAGES = {
    "POST /studio/quote/": ("/studio/quote/", STUDIO_NAMES),
    "POST /studio/jobs/": ("/studio/jobs/", STUDIO_NAMES),
    "POST /studio/uploads/<role>/": ("/studio/uploads/{role}/", STUDIO_NAMES),
    "POST /api-keys/": ("/api-keys/", ["name", "form_token"]),
}
ROLE_IN_PATH = st.one_of(
    st.sampled_from(ROLES), st.text(min_size=1, max_size=12).filter(lambda r: "/" not in r)
)


def check(response, page: str, requests_made: Counter) -> None:
    requests_made[page] += 1
    assert response.status_code < 500, f"{page} answered {response.status_code}"


@pytest.mark.parametrize("endpoint", GET_PAGES)
def test_no_page_answers_5xx_to_any_query(member, requests_made, endpoint):
    path, names = GET_PAGES[endpoint]

    @FUZZ
    @given(query=pairs(names), headers=st.sampled_from(HX_PARTS))
    def visit(query, headers):
        response = member.client.get(f"{path}?{urlencode(query)}", **headers)
        check(response, endpoint, requests_made)

    visit()


@pytest.mark.parametrize("endpoint", POST_PAGES)
def test_no_form_answers_5xx_to_any_body(member, requests_made, endpoint):
    path, names = POST_PAGES[endpoint]

    @FUZZ
    @given(
        role=ROLE_IN_PATH,
        from_a_good_form=st.booleans(),
        body=pairs(names),
        files=FILES,
        query=pairs(["mode"]),
        encoding=st.sampled_from(["multipart", "urlencoded", "client"]),
        headers=st.sampled_from(HX),
    )
    def send(role, from_a_good_form, body, files, query, encoding, headers):
        url = f"{path.format(role=quote(role, safe=''))}?{urlencode(query)}"
        # Later values win (QueryDict), so the fuzzed ones change the good form.
        fields = (member.form if from_a_good_form else []) + body
        if encoding == "multipart":
            data, content_type = multipart(fields, files)
        elif encoding == "urlencoded":
            data, content_type = urlencode(fields), "application/x-www-form-urlencoded"
        else:  # the test client's own encoding: lists for repeated keys, its own files
            data, content_type = as_dict(fields), None
            for field, name, content in files:
                # The test client takes only names a file on disk could have.
                name = (
                    os.path.basename(name) if os.path.basename(name) not in ("", ".", "..") else "f"
                )
                data.setdefault(field, []).append(SimpleUploadedFile(name, content))
        if content_type:
            response = member.client.post(url, data, content_type=content_type, **headers)
        else:
            response = member.client.post(url, data, **headers)
        check(response, endpoint, requests_made)

    send()


def test_no_gallery_item_answers_5xx_to_any_id(member, requests_made):
    page = "GET /gallery/<id>/"
    ids = list(Job.objects.values_list("pk", flat=True))

    @FUZZ
    @given(
        pk=st.one_of(st.sampled_from(ids), st.integers(min_value=0, max_value=2**80)),
        query=pairs([]),
        headers=st.sampled_from(HX),
    )
    def visit(pk, query, headers):
        response = member.client.get(f"/gallery/{pk}/?{urlencode(query)}", **headers)
        check(response, page, requests_made)

    visit()


def test_no_job_page_answers_5xx_to_any_id(member, requests_made):
    page = "GET /jobs/<id>/"
    ids = list(Job.objects.values_list("pk", flat=True))

    @FUZZ
    @given(
        pk=st.one_of(st.sampled_from(ids), st.integers(min_value=0, max_value=2**80)),
        query=pairs([]),
        headers=st.sampled_from(HX_PARTS),
    )
    def visit(pk, query, headers):
        response = member.client.get(f"/jobs/{pk}/?{urlencode(query)}", **headers)
        check(response, page, requests_made)

    visit()
