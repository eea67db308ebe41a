"""The team's gallery: who sees which video (and its poster, inputs and
page), the owner's share switch, filters and search, loading more, remixing
an item into a new job, posters made when a video is archived, and query
counts that do not grow with the number of jobs."""

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from jobs.credits.ledger import credits_grant
from jobs.files import media
from jobs.gallery import services as gallery
from jobs.models import Job, JobInput, JobState, Upload
from jobs.pipeline import lifecycle
from jobs.studio.uploads import upload_stage
from tests.fetch_support import LoopbackServer
from tests.media_factory import make_audio, make_image, make_video

pytestmark = pytest.mark.django_db

ROLES = {
    "dialog": ("image", "left_audio", "right_audio"),
    "talking_photo": ("image", "audio"),
    "video_dub": ("video", "audio"),
}
MODELS = {
    ("joypix", "dialog"): "motion-2-dialog",
    ("lipsync_studio", "dialog"): "lipsync-image-multi",
    ("lipsync_studio", "talking_photo"): "lipsync-image",
    ("lipsync_studio", "video_dub"): "lipsync-video",
}
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SUFFIX = {"image": "png", "video": "mp4", "audio": "mp3"}
CONTENT_TYPE = {"image": "image/png", "video": "video/mp4", "audio": "audio/mpeg"}


# --- making finished jobs ------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Real files, made once: what a finished dialog job keeps."""
    d = tmp_path_factory.mktemp("gallery-sources")
    photo = make_image(d / "photo.png", 320, 240, fmt="png")
    return {
        "photo": photo,
        "thumb": media.make_thumbnail(photo, d / "thumb.webp"),
        "left": make_audio(d / "left.mp3", 2.0, tone_hz=220),
        "right": make_audio(d / "right.mp3", 3.0, tone_hz=330),
        "video": make_video(d / "output.mp4", 3.0, 320, 240, 15),
    }


def store(path: Path, name: str) -> str:
    with open(path, "rb") as fh:
        return default_storage.save(name, File(fh))


def finished_job(
    owner,
    *,
    mode: str = "dialog",
    provider: str = "joypix",
    resolution: str = "480p",
    prompt: str = "",
    seed: int = -1,
    finished_at: datetime | None = None,
    shared: bool = True,
    files: dict[str, Path] | None = None,
    **fields,
) -> Job:
    """A completed job as archiving leaves it. With `files` (the `sources`
    fixture), its video and inputs are real files in MEDIA_ROOT; without,
    they are only names (enough for pages that never open them)."""
    job = Job.objects.create(
        owner=owner,
        mode=mode,
        provider=provider,
        provider_model=MODELS[(provider, mode)],
        resolution=resolution,
        prompt=prompt,
        seed=seed,
        shared=shared,
        state=JobState.COMPLETED,
        input_seconds=3.0,
        credits_per_unit=15,
        usd_per_unit="0.15",
        credits_held=15,
        credits_charged=15,
        output=store(files["video"], "outputs/job.mp4") if files else "outputs/job.mp4",
        output_seconds=3.0,
        output_width=320,
        output_height=240,
        finished_at=finished_at or T0,
        **fields,
    )
    JobInput.objects.bulk_create(_inputs(job, files))
    return job


def _inputs(job: Job, files: dict[str, Path] | None) -> list[JobInput]:
    made = []
    for role in ROLES[job.mode]:
        kind = "image" if role == "image" else "video" if role == "video" else "audio"
        inp = JobInput(
            job=job,
            role=role,
            original_name=f"{role}.{SUFFIX[kind]}",
            content_type=CONTENT_TYPE[kind],
            size=1000,
            duration=None if kind == "image" else 2.0,
            width=320 if kind != "audio" else None,
            height=240 if kind != "audio" else None,
        )
        if files:
            source = {"image": files["photo"], "video": files["video"]}.get(kind)
            if kind == "audio":
                source = files["left"] if role != "right_audio" else files["right"]
            inp.file = store(source, f"inputs/{source.name}")
            if kind != "audio":
                inp.thumbnail = store(files["thumb"], "thumbs/thumb.webp")
        else:
            inp.file = f"inputs/{role}.bin"
            inp.thumbnail = "thumbs/t.webp" if kind != "audio" else ""
        made.append(inp)
    return made


def many_jobs(owner, count: int, **fields) -> list[Job]:
    """`count` finished jobs in two queries, one minute apart, newest last."""
    jobs = Job.objects.bulk_create(
        Job(
            owner=owner,
            mode="dialog",
            provider="joypix",
            provider_model="motion-2-dialog",
            resolution="480p",
            prompt=f"take {i}",
            state=JobState.COMPLETED,
            credits_per_unit=15,
            credits_held=15,
            credits_charged=15,
            output="outputs/job.mp4",
            output_seconds=3.0,
            finished_at=T0 + timedelta(minutes=i),
            **fields,
        )
        for i in range(count)
    )
    JobInput.objects.bulk_create(inp for job in jobs for inp in _inputs(job, None))
    return jobs


def item_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'id="gallery-item-(\d+)"', html)]


def client_for(user):
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


HX = {"HX-Request": "true"}


# --- who sees what ---------------------------------------------------------------------


def test_an_unshared_job_is_invisible_to_other_members_everywhere(
    media_root, sources, alice, bob, staff
):
    job = finished_job(alice, shared=False, files=sources)
    assert gallery.job_poster_make(job=job)
    bob_client = client_for(bob)

    assert job.pk not in item_ids(bob_client.get(reverse("gallery")).content.decode())
    for url in (
        reverse("gallery_detail", args=[job.pk]),
        reverse("job_video", args=[job.pk]),
        reverse("job_poster", args=[job.pk]),
        reverse("job_thumbnail", args=[job.pk]),
        reverse("job_input_media", args=[job.pk, "image"]),
        reverse("job_input_media", args=[job.pk, "image"]) + "?thumbnail=1",
        reverse("job_input_media", args=[job.pk, "left_audio"]),
    ):
        assert bob_client.get(url).status_code == 404, url
    assert bob_client.post(reverse("gallery_remix", args=[job.pk])).status_code == 404
    assert not Upload.objects.filter(owner=bob).exists()

    # Its owner and staff see it, marked as not shared.
    for viewer in (alice, staff):
        c = client_for(viewer)
        html = c.get(reverse("gallery")).content.decode()
        assert item_ids(html) == [job.pk]
        assert "Not shared" in html
        assert c.get(reverse("gallery_detail", args=[job.pk])).status_code == 200
        assert c.get(reverse("job_poster", args=[job.pk]))["Content-Type"] == "image/webp"
        video = c.get(reverse("job_video", args=[job.pk]), HTTP_RANGE="bytes=0-99")
        assert video.status_code == 206
        audio = c.get(
            reverse("job_input_media", args=[job.pk, "left_audio"]), HTTP_RANGE="bytes=0-9"
        )
        assert audio.status_code == 206 and audio["Content-Type"] == "audio/mpeg"


def test_a_shared_job_is_there_for_every_member_with_its_inputs(media_root, sources, alice, bob):
    job = finished_job(alice, prompt="two friends chat", files=sources)
    c = client_for(bob)

    html = c.get(reverse("gallery")).content.decode()
    assert item_ids(html) == [job.pk]
    assert "two friends chat" in html and "<span>JoyPix</span>" in html and "480p" in html
    assert "Alice" in html and "3.0 s" in html

    page = c.get(reverse("gallery_detail", args=[job.pk])).content.decode()
    assert f'src="/jobs/{job.pk}/inputs/left_audio"' in page
    assert f'src="/jobs/{job.pk}/inputs/image?thumbnail=1"' in page
    assert f'href="/jobs/{job.pk}/video.mp4?download=1"' in page
    assert "15 credits" in page and "Remix" in page
    # Only the owner gets the share switch.
    assert 'role="switch"' not in page

    whole = c.get(reverse("job_input_media", args=[job.pk, "right_audio"]))
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == sources["right"].read_bytes()
    assert c.get(reverse("job_input_media", args=[job.pk, "mask"])).status_code == 404


def test_unfinished_and_deleted_jobs_are_not_in_the_gallery(alice_client, alice):
    done = finished_job(alice)
    running = finished_job(alice)
    Job.objects.filter(pk=running.pk).update(
        state=JobState.PROCESSING, provider_task_id="t-1", finished_at=None, credits_charged=None
    )
    gone = finished_job(alice)
    Job.objects.filter(pk=gone.pk).update(deleted_at=T0)

    assert item_ids(alice_client.get(reverse("gallery")).content.decode()) == [done.pk]
    for pk in (running.pk, gone.pk):
        assert alice_client.get(reverse("gallery_detail", args=[pk])).status_code == 404


def test_the_gallery_says_when_nothing_is_shared(alice_client, bob):
    finished_job(bob, shared=False)
    assert "Nothing shared yet" in alice_client.get(reverse("gallery")).content.decode()


# --- the share switch ---------------------------------------------------------------


def test_only_the_owner_can_switch_sharing(alice_client, alice, bob, staff):
    job = finished_job(alice)
    url = reverse("job_share", args=[job.pk])

    for other in (bob, staff):
        assert client_for(other).post(url, {"shared": "0"}).status_code == 404
    job.refresh_from_db()
    assert job.shared

    response = alice_client.post(url, {"shared": "0"}, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="share-{job.pk}-switch" role="switch" aria-checked="false"' in html
    assert 'name="shared" value="1"' in html
    job.refresh_from_db()
    assert not job.shared
    assert job.pk not in item_ids(client_for(bob).get(reverse("gallery")).content.decode())

    # Without JavaScript: the form posts, then the page it came from.
    response = alice_client.post(url, {"shared": "1"}, HTTP_REFERER="http://testserver/gallery/")
    assert response.status_code == 302 and response["Location"] == "http://testserver/gallery/"
    response = alice_client.post(url, {"shared": "1"}, HTTP_REFERER="https://evil.example/")
    assert response["Location"] == reverse("studio")
    job.refresh_from_db()
    assert job.shared
    assert alice_client.get(url).status_code == 405


def test_a_completed_card_has_the_switch_and_others_do_not(alice_client, alice):
    done = finished_job(alice)
    failed = finished_job(alice)
    Job.objects.filter(pk=failed.pk).update(state=JobState.FAILED, credits_charged=None)

    html = alice_client.get(reverse("studio")).content.decode()

    assert f'id="share-{done.pk}-switch" role="switch" aria-checked="true"' in html
    assert f'id="share-{failed.pk}-switch"' not in html


# --- filters and search ----------------------------------------------------------------


@pytest.fixture
def assorted(alice, bob):
    """Six jobs that differ in one way or another."""
    return {
        "a": finished_job(alice, prompt="Two friends chat HAPPILY", finished_at=T0),
        "b": finished_job(
            alice,
            mode="talking_photo",
            provider="lipsync_studio",
            resolution="720p",
            prompt="a calm news anchor",
            finished_at=T0 + timedelta(days=1),
        ),
        "c": finished_job(
            bob,
            mode="video_dub",
            provider="lipsync_studio",
            prompt="happily singing",
            finished_at=T0 + timedelta(days=2, hours=11, minutes=59),  # 12 Mar, 23:59
        ),
        "d": finished_job(bob, resolution="720p", prompt="", finished_at=T0 + timedelta(days=3)),
        "e": finished_job(
            bob,
            mode="dialog",
            provider="lipsync_studio",
            prompt="friends argue",
            finished_at=T0 + timedelta(days=4),
        ),
        "f": finished_job(alice, prompt="happily ever after", finished_at=T0 + timedelta(days=5)),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "fedcba"),
        ("mode=dialog", "feda"),
        ("mode=video_dub", "c"),
        ("provider=lipsync_studio", "ecb"),
        ("resolution=720p", "db"),
        ("owner=BOB", "edc"),
        ("date_from=2026-03-12", "fedc"),
        ("date_to=2026-03-12", "cba"),  # the whole of the 12th, to 23:59
        ("date_from=2026-03-11&date_to=2026-03-12", "cb"),
        ("q=happily", "fca"),
        ("q=FRIENDS", "ea"),
        ("q=happily+friends", "a"),  # every word, in any order
        ("q=nobody", ""),
        ("mode=dialog&owner=ALICE&q=happily", "fa"),
        ("provider=lipsync_studio&owner=BOB&resolution=480p&date_to=2026-03-13", "c"),
    ],
)
def test_filters_and_search_narrow_and_combine(alice_client, alice, bob, assorted, query, expected):
    query = query.replace("BOB", str(bob.pk)).replace("ALICE", str(alice.pk))
    html = alice_client.get(f"{reverse('gallery')}?{query}").content.decode()
    assert item_ids(html) == [assorted[key].pk for key in expected]
    if expected == "":
        assert "No videos match these filters" in html


def test_a_wrong_filter_says_so_and_the_others_still_apply(alice_client, assorted):
    html = alice_client.get(f"{reverse('gallery')}?mode=opera&resolution=720p").content.decode()
    assert "Select a valid choice" in html
    assert item_ids(html) == [assorted["d"].pk, assorted["b"].pk]

    html = alice_client.get(
        f"{reverse('gallery')}?date_from=2026-03-13&date_to=2026-03-11"
    ).content.decode()
    assert "This date is before the “From” date." in html


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "3000-01-01"])
@pytest.mark.parametrize("name", ["date_from", "date_to"])
def test_a_date_out_of_range_is_an_error_on_its_field_and_the_others_still_apply(
    alice_client, assorted, name, day
):
    response = alice_client.get(f"{reverse('gallery')}?mode=video_dub&{name}={day}")

    assert response.status_code == 200
    html = response.content.decode()
    field = html.split(f'name="{name}"', 1)[1].split("</div>", 1)[0]
    assert "Choose a date from 1 Jan 2000 to 31 Dec 2999." in field
    assert item_ids(html) == [assorted["c"].pk]


def test_the_address_keeps_the_filters(alice_client, bob, assorted):
    base = reverse("gallery")
    # A plain form sends its empty fields too; the page moves to the short address.
    response = alice_client.get(f"{base}?q=happily&mode=&provider=&owner={bob.pk}&date_to=")
    assert response.status_code == 302
    assert response["Location"] == f"{base}?q=happily&owner={bob.pk}"

    response = alice_client.get(f"{base}?q=happily&mode=&owner={bob.pk}", headers=HX)
    assert response["HX-Push-Url"] == f"{base}?q=happily&owner={bob.pk}"
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="gallery-results" id="gallery-results"')
    assert item_ids(html) == [assorted["c"].pk]

    page = alice_client.get(f"{base}?q=happily&owner={bob.pk}").content.decode()
    assert 'value="happily"' in page
    assert f'<option value="{bob.pk}" selected>Bob</option>' in page


# --- loading more ------------------------------------------------------------------


def next_link(html: str) -> str | None:
    found = re.search(r'<a class="button" href="([^"]+)" rel="next" data-gallery-more', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_load_more_returns_the_next_page_with_the_same_filters(alice_client, alice, bob):
    mine = many_jobs(alice, 30)
    many_jobs(bob, 5)
    newest_first = [job.pk for job in reversed(mine)]

    first = alice_client.get(f"{reverse('gallery')}?owner={alice.pk}").content.decode()
    assert item_ids(first) == newest_first[:24]
    more = next_link(first)
    assert more is not None
    assert parse_qs(urlsplit(more).query)["owner"] == [str(alice.pk)]
    assert 'hx-trigger="revealed, click"' in first

    response = alice_client.get(more, headers=HX)
    html = response.content.decode()
    assert item_ids(html) == newest_first[24:]
    assert next_link(html) is None
    assert "6 more videos loaded; that is all of them." in html

    # Without JavaScript the same link is a page of its own.
    page = alice_client.get(more).content.decode()
    assert item_ids(page) == newest_first[24:]
    assert "Back to the newest" in page


def test_pages_neither_skip_nor_repeat_jobs_that_finished_together(alice_client, alice):
    jobs = many_jobs(alice, 30)
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(finished_at=T0)
    seen: list[int] = []
    url = reverse("gallery")
    while url:
        html = alice_client.get(url, headers=HX if seen else {}).content.decode()
        seen += item_ids(html)
        url = next_link(html)
    assert seen == sorted((j.pk for j in jobs), reverse=True)


def test_a_bad_cursor_starts_from_the_newest(alice_client, alice):
    jobs = many_jobs(alice, 3)
    html = alice_client.get(f"{reverse('gallery')}?before=yesterday").content.decode()
    assert item_ids(html) == [j.pk for j in reversed(jobs)]


# --- remix ---------------------------------------------------------------------------


def test_remix_opens_the_studio_with_copies_of_the_inputs_and_the_options(
    media_root, sources, alice, bob
):
    job = finished_job(
        alice, resolution="720p", prompt="two friends chat", seed=1234, files=sources
    )
    c = client_for(bob)
    credits_grant(user=bob, pool="studio", amount=100, key="grant:bob")

    response = c.post(reverse("gallery_remix", args=[job.pk]))

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == reverse("studio")
    params = {k: v[0] for k, v in parse_qs(target.query).items()}
    copies = {u.pk: u for u in Upload.objects.filter(owner=bob)}
    assert len(copies) == 3
    assert {k: v for k, v in params.items() if not k.endswith("_upload")} == {
        "mode": "dialog",
        "provider": "joypix",
        "resolution": "720p",
        "prompt": "two friends chat",
        "seed": "1234",
    }
    sources_by_role = {inp.role: inp for inp in job.inputs.all()}
    for role in ("image", "left_audio", "right_audio"):
        copy = copies[int(params[f"{role}_upload"])]
        assert copy.file.name != sources_by_role[role].file.name
        assert copy.original_name == f"{role}.{'png' if role == 'image' else 'mp3'}"
        with copy.file.open("rb") as a, sources_by_role[role].file.open("rb") as b:
            assert a.read() == b.read()

    page = c.get(response["Location"]).content.decode()
    assert "The files and settings of job" in page
    for name in ("image.png", "left_audio.mp3", "right_audio.mp3"):
        assert f"<strong>{name}</strong>" in page
    for role in ("image", "left_audio", "right_audio"):
        assert f'name="{role}_upload" value="{params[role + "_upload"]}"' in page
    assert re.search(r'<input type="radio" name="resolution" value="720p"[^>]*checked', page)
    assert re.search(r"<textarea[^>]*>\s*two friends chat</textarea>", page)
    assert re.search(r'<input type="number" name="seed" value="1234"', page)
    # The cost is there at once: the longer clip (3 s) is one unit at 720p.
    assert "30 credits" in page


def test_a_lipsync_dialogs_page_says_how_they_spoke_and_its_remix_keeps_it(
    media_root, sources, alice, bob
):
    job = finished_job(
        alice,
        provider="lipsync_studio",
        files=sources,
        dialog_order="sequential",
        unit_seconds=1,
        min_seconds=5,
    )
    Job.objects.filter(pk=job.pk).update(credits_per_unit=2, credits_held=10, credits_charged=10)
    c = client_for(bob)

    page = c.get(reverse("gallery_detail", args=[job.pk])).content.decode()
    assert "<dt>Speakers</dt><dd>They take turns</dd>" in page
    assert '10 credits</strong> <span class="muted">· 2 credits per second, 5 s minimum' in page

    response = c.post(reverse("gallery_remix", args=[job.pk]))
    params = parse_qs(urlsplit(response["Location"]).query)
    assert params["dialog_order"] == ["sequential"]
    studio = c.get(response["Location"]).content.decode()
    assert re.search(
        r'<input type="radio" name="dialog_order" value="sequential"[^>]*checked', studio
    )


def test_deleting_the_source_job_leaves_the_remix_copies(
    media_root, sources, alice, django_capture_on_commit_callbacks
):
    job = finished_job(alice, files=sources)
    client_for(alice).post(reverse("gallery_remix", args=[job.pk]))
    copies = list(Upload.objects.filter(owner=alice))
    source_names = [inp.file.name for inp in job.inputs.all()]

    # job_delete removes the files once its transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.job_delete(Job.objects.get(pk=job.pk))

    assert not any(default_storage.exists(n) for n in source_names)
    assert len(copies) == 3
    assert all(default_storage.exists(u.file.name) for u in copies)


def test_remix_is_refused_once_the_inputs_are_gone(media_root, sources, alice, bob):
    job = finished_job(alice, files=sources, inputs_purged_at=T0 + timedelta(days=31))
    JobInput.objects.filter(job=job).update(file="", thumbnail="")
    c = client_for(bob)

    page = c.get(reverse("gallery_detail", args=[job.pk])).content.decode()
    assert ">Remix</button>" not in page
    assert "cannot be remixed" in page

    response = c.post(reverse("gallery_remix", args=[job.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("gallery_detail", args=[job.pk])
    assert "were removed on 10 Apr 2026, so it cannot be remixed" in response.content.decode()
    assert not Upload.objects.exists()
    assert c.get(reverse("job_input_media", args=[job.pk, "left_audio"])).status_code == 404


def test_remix_is_refused_when_a_file_has_vanished(media_root, sources, alice):
    job = finished_job(alice, files=sources)
    default_storage.delete(job.inputs.get(role="right_audio").file.name)

    response = client_for(alice).post(reverse("gallery_remix", args=[job.pk]), follow=True)

    assert "could not be read, so it cannot be remixed" in response.content.decode()
    assert not Upload.objects.exists()
    assert not list((Path(media_root) / "uploads").rglob("*.*"))


def test_remix_needs_a_post(alice_client, alice):
    job = finished_job(alice)
    assert alice_client.get(reverse("gallery_remix", args=[job.pk])).status_code == 405


# --- posters ----------------------------------------------------------------------------


def test_a_poster_is_a_small_webp_frame_of_the_video(media_root, sources, alice):
    job = finished_job(alice, files=sources)

    assert gallery.job_poster_make(job=job)

    job.refresh_from_db()
    assert job.poster.name.endswith(".webp")
    with Image.open(default_storage.path(job.poster.name)) as img:
        assert img.format == "WEBP" and img.size == (320, 240)
    served = client_for(alice).get(reverse("job_poster", args=[job.pk]))
    assert served["Content-Type"] == "image/webp"
    assert (
        b"".join(served.streaming_content)
        == Path(default_storage.path(job.poster.name)).read_bytes()
    )


def test_without_a_poster_the_gallery_shows_the_photo(media_root, sources, alice):
    job = finished_job(alice, files=sources)
    served = client_for(alice).get(reverse("job_poster", args=[job.pk]))
    assert b"".join(served.streaming_content) == sources["thumb"].read_bytes()
    html = client_for(alice).get(reverse("gallery")).content.decode()
    assert f'<img src="/jobs/{job.pk}/poster.webp"' in html


@pytest.fixture
def gallery_log(caplog):
    """What jobs.gallery logs (the "jobs" loggers do not propagate to the root)."""
    logger = logging.getLogger("jobs.gallery.services")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_a_video_that_yields_no_poster_is_logged_not_raised(
    media_root, sources, alice, gallery_log
):
    job = finished_job(alice)
    Job.objects.filter(pk=job.pk).update(output=store(sources["left"], "outputs/not-video.mp4"))
    job.refresh_from_db()

    assert gallery.job_poster_make(job=job) is False

    job.refresh_from_db()
    assert not job.poster
    assert "no poster could be made" in gallery_log.text


@pytest.fixture
def archiving_job(media_root, sources, alice, settings, serve):
    """A job that the provider has finished: archiving fetches our MP4 from
    a loopback server standing in for the provider's storage."""
    settings.FETCH_ALLOW_LOOPBACK = True
    provider = serve(LoopbackServer.body(sources["video"].read_bytes()))
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice")
    files = {
        role: upload_stage(
            owner=alice,
            kind=kind,
            uploaded=SimpleUploadedFile(path.name, path.read_bytes()),
        )
        for role, kind, path in (
            ("image", "image", sources["photo"]),
            ("left_audio", "audio", sources["left"]),
            ("right_audio", "audio", sources["right"]),
        )
    }
    job = lifecycle.job_create(
        owner=alice, mode="dialog", provider="joypix", resolution="480p", files=files
    )
    Job.objects.filter(pk=job.pk).update(
        state=JobState.ARCHIVING, output_url=f"{provider.url}/out.mp4"
    )
    return job


def test_archiving_stores_the_poster(archiving_job):
    lifecycle.job_archive(archiving_job.pk)

    job = Job.objects.get(pk=archiving_job.pk)
    assert job.state == JobState.COMPLETED
    assert job.poster and default_storage.exists(job.poster.name)


def test_a_poster_failure_never_fails_the_archive(archiving_job, monkeypatch, gallery_log):
    def broken(*args, **kwargs):
        raise RuntimeError("no frames today")

    monkeypatch.setattr(media, "poster_frame", broken)

    lifecycle.job_archive(archiving_job.pk)

    job = Job.objects.get(pk=archiving_job.pk)
    assert job.state == JobState.COMPLETED and job.credits_charged == 15
    assert not job.poster
    assert "no poster could be made" in gallery_log.text


def test_deleting_a_job_removes_its_poster(
    media_root, sources, alice, django_capture_on_commit_callbacks
):
    job = finished_job(alice, files=sources)
    gallery.job_poster_make(job=job)
    name = Job.objects.get(pk=job.pk).poster.name

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.job_delete(Job.objects.get(pk=job.pk))

    assert not default_storage.exists(name)
    assert not Job.objects.get(pk=job.pk).poster


# --- bounded queries ----------------------------------------------------------------------


def count_queries(c, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = c.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "view",
    ["gallery", "filtered gallery", "next page", "detail", "studio"],
)
def test_pages_answer_in_the_same_number_of_queries_however_many_jobs(alice, bob, view):
    """Page sizes differ (2 items, then full pages of 24); the count must not."""
    c = client_for(alice)
    counts = []
    for total in (2, 30, 60):
        made = many_jobs(alice, total - Job.objects.filter(owner=alice).count())
        many_jobs(bob, 3)
        newest = Job.objects.filter(owner=alice).order_by("-finished_at").first()
        cursor = gallery.Cursor(newest.finished_at, newest.pk)
        url = {
            "gallery": reverse("gallery"),
            "filtered gallery": (
                f"{reverse('gallery')}?mode=dialog&provider=joypix&resolution=480p"
                f"&owner={alice.pk}&q=take&date_from=2026-01-01&date_to=2026-12-31"
            ),
            "next page": f"{reverse('gallery')}?before={cursor}",
            "detail": reverse("gallery_detail", args=[made[-1].pk if made else newest.pk]),
            "studio": reverse("studio"),
        }[view]
        counts.append(count_queries(c, url))
    assert counts[0] == counts[1] == counts[2], counts
    assert counts[0] <= 12, counts


# --- retention countdowns ------------------------------------------------------------------


def _countdowns(html: str, pk: int) -> list[tuple[str, int]]:
    """(label, epoch ms) of each countdown inside gallery item `pk`."""
    item = html.split(f'id="gallery-item-{pk}"', 1)[1].split("</li>", 1)[0]
    return [
        (label.strip(), int(ms))
        for label, ms in re.findall(r"<span>([^<]+)<time data-countdown=\"(\d+)\"", item)
    ]


def test_gallery_items_count_down_to_the_deletion_of_their_files(alice_client, alice, settings):
    settings.INPUT_RETENTION_DAYS = 30
    settings.OUTPUT_RETENTION_DAYS = 0
    recent = finished_job(alice, finished_at=timezone.now())
    kept = finished_job(alice, archive_expires_at=timezone.now() + timedelta(days=5))
    purged = finished_job(alice, inputs_purged_at=T0)

    html = alice_client.get(reverse("gallery")).content.decode()

    inputs_until = recent.finished_at + timedelta(days=30)
    assert _countdowns(html, recent.pk) == [
        ("Inputs deleted in", int(inputs_until.timestamp() * 1000))
    ]
    video_until = Job.objects.get(pk=kept.pk).archive_expires_at
    assert ("Video deleted in", int(video_until.timestamp() * 1000)) in _countdowns(html, kept.pk)
    assert _countdowns(html, purged.pk) == []  # nothing left to delete on a schedule

    detail = alice_client.get(reverse("gallery_detail", args=[recent.pk])).content.decode()
    assert f'data-countdown="{int(inputs_until.timestamp() * 1000)}"' in detail


def test_with_inputs_and_outputs_kept_forever_no_countdown_is_shown(alice_client, alice, settings):
    settings.INPUT_RETENTION_DAYS = 0
    settings.OUTPUT_RETENTION_DAYS = 0
    job = finished_job(alice, finished_at=timezone.now())
    assert _countdowns(alice_client.get(reverse("gallery")).content.decode(), job.pk) == []
