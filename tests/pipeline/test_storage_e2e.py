"""A job's media through the storage, end to end, on the local disk and on S3
(moto's S3 server on loopback; see tests/storage_support.py): uploaded
through the Studio, fetched by the provider through its input links, archived,
played with Range by its owner (on S3 through a signed redirect to the store,
followed here with a plain HTTP client), fetched through the API's output
link, then removed by retention or by deleting the job."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.api.outputs import output_link
from jobs.models import Job, JobInput, Upload
from jobs.pipeline.retention import retention_purge
from tests.pipeline_support import assert_playable, run_until_terminal


def stage_over_http(client: Client, role: str, path: Path) -> str:
    """The Studio's upload endpoint, as the page sends a chosen file."""
    with open(path, "rb") as fh:
        response = client.post(
            reverse("studio_upload", args=[role]),
            {"mode": "dialog", role: fh},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    return str(Upload.objects.filter(owner=response.wsgi_request.user).latest("pk").pk)


def dialog_over_http(pipeline, user) -> Job:
    """A dialog job made through the Studio's pages: three uploads, then the form."""
    client = Client()
    client.force_login(user)
    staged = {
        "image_upload": stage_over_http(client, "image", pipeline.photo()),
        "left_audio_upload": stage_over_http(client, "left_audio", pipeline.audio(1.5)),
        "right_audio_upload": stage_over_http(
            client, "right_audio", pipeline.audio(2.0, fmt="wav", tone_hz=330)
        ),
    }
    form = {"mode": "dialog", "provider": "joypix", "resolution": "480p", "seed": "7"}
    response = client.post(reverse("job_new"), form | staged, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content.decode()[:500]
    return Job.objects.filter(owner=user).latest("pk")


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def play(session: requests.Session, url: str, storage, *, range_header: str = ""):
    """GET `url` as a browser's player does. From S3 the studio answers with a
    redirect to a signed link on the store, which this follows (with the same
    Range) after checking it; from the disk it answers itself."""
    headers = {"Range": range_header} if range_header else {}
    first = session.get(url, headers=headers, allow_redirects=False, timeout=10)
    if storage.backend == "local":
        assert first.status_code in (200, 206), first.status_code
        return first
    assert first.status_code == 302, first.status_code
    location = first.headers["Location"]
    parts = urlsplit(location)
    # To the store, which the page's CSP allows, signed for a short while.
    assert f"{parts.scheme}://{parts.netloc}" in storage.origins
    assert parts.netloc == urlsplit(storage.endpoint).netloc
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == [str(settings.STORAGE_URL_MAX_AGE)]
    assert "X-Amz-Signature" in query
    assert first.headers["Cache-Control"].startswith("private")
    # The store itself: a plain client on loopback, no studio session.
    return requests.get(location, headers=headers, timeout=10)


def test_upload_archive_ranged_playback_and_the_api_link_go_through_the_storage(
    pipeline, media_storage, alice, bob
):
    job = dialog_over_http(pipeline, alice)
    # The provider's input links answer with the bytes themselves, never a
    # redirect (its fetcher need not follow one), Range included.
    [task] = pipeline.sandbox.tasks.values()
    image = job.inputs.get(role="image")
    [image_url] = [url for role, url in task.inputs.values() if role == "image"]
    fetched = requests.get(image_url, allow_redirects=False, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == stored_bytes(image.file.name)
    first = requests.get(image_url, headers={"Range": "bytes=0-9"}, timeout=10)
    assert (first.status_code, first.content) == (206, fetched.content[:10])
    # Some providers send HEAD first: the size, no body, no redirect.
    head = requests.head(image_url, allow_redirects=False, timeout=10)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(fetched.content))
    assert head.content == b""

    done = run_until_terminal(job)
    assert done.state == "completed", done.error
    assert_playable(done, "480p", 2.0)

    inputs = list(done.inputs.all())
    names = {done.output.name, done.poster.name} | {
        f.name for inp in inputs for f in (inp.file, inp.thumbnail) if f
    }
    assert all(default_storage.exists(n) for n in names)
    if media_storage.backend == "s3":
        # Everything is in the bucket, and nothing was kept on this machine's disk.
        assert names <= media_storage.object_names()
        media_root = Path(settings.MEDIA_ROOT)
        assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))

    video = stored_bytes(done.output.name)
    size = len(video)
    url = pipeline.studio_url + reverse("job_video", args=[done.pk])
    owner = pipeline.browser(alice)

    whole = play(owner, url, media_storage)
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.content == video
    part = play(owner, url, media_storage, range_header="bytes=100-1099")
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{size}"
    assert part.content == video[100:1100]
    tail = play(owner, url, media_storage, range_header="bytes=-500")
    assert (tail.status_code, tail.content) == (206, video[-500:])
    download = play(owner, url + "?download=1", media_storage)
    assert download.headers["Content-Disposition"] == (
        f'attachment; filename="lipsync-job-{done.pk}.mp4"'
    )
    poster = play(owner, pipeline.studio_url + reverse("job_poster", args=[done.pk]), media_storage)
    assert poster.headers["Content-Type"] == "image/webp"
    assert poster.content == stored_bytes(done.poster.name)

    # The studio's permission check comes first: once unshared, another member
    # gets a 404, never a link to the store.
    Job.objects.filter(pk=done.pk).update(shared=False)
    refused = pipeline.browser(bob).get(url, allow_redirects=False, timeout=10)
    assert refused.status_code == 404
    assert "Location" not in refused.headers

    # The API's output link answers with the bytes itself, Range included.
    link = output_link(done)
    api_part = requests.get(
        link, headers={"Range": "bytes=0-99"}, allow_redirects=False, timeout=10
    )
    assert api_part.status_code == 206
    assert api_part.content == video[:100]
    assert requests.get(link, allow_redirects=False, timeout=10).content == video

    # Retention: the output and the inputs go from the store; the poster stays.
    later = timezone.now() + timedelta(days=settings.INPUT_RETENTION_DAYS + 1)
    Job.objects.filter(pk=done.pk).update(archive_expires_at=timezone.now())
    counts = retention_purge(now=later)
    assert (counts["inputs"], counts["outputs"]) == (1, 1)
    gone = names - {done.poster.name}
    assert not any(default_storage.exists(n) for n in gone)
    assert default_storage.exists(done.poster.name)
    if media_storage.backend == "s3":
        assert media_storage.object_names() == {done.poster.name}
    assert owner.get(url, allow_redirects=False, timeout=10).status_code == 404
    assert requests.get(link, timeout=10).status_code == 404


def test_deleting_a_job_removes_its_files_but_not_a_remixs_copies(pipeline, media_storage, alice):
    done = run_until_terminal(pipeline.create_dialog())
    assert done.state == "completed", done.error
    client = Client()
    client.force_login(alice)
    names = {done.output.name, done.poster.name} | {
        f.name for inp in done.inputs.all() for f in (inp.file, inp.thumbnail) if f
    }
    assert all(default_storage.exists(n) for n in names)

    # A remix copies the inputs: objects of their own.
    remix = client.post(reverse("gallery_remix", args=[done.pk]))
    assert remix.status_code == 302
    copies = {
        f.name for u in Upload.objects.filter(owner=alice) for f in (u.file, u.thumbnail) if f
    }
    assert len(copies) == 4  # the photo, its thumbnail and the two voices
    assert not copies & names
    copied = {n: stored_bytes(n) for n in copies}

    response = client.post(reverse("job_delete", args=[done.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert not any(default_storage.exists(n) for n in names)
    assert not JobInput.objects.filter(job=done).exclude(file="").exists()
    assert {n: stored_bytes(n) for n in copies} == copied
    if media_storage.backend == "s3":
        assert media_storage.object_names() == copies
    video = pipeline.browser(alice).get(
        pipeline.studio_url + reverse("job_video", args=[done.pk]), timeout=10
    )
    assert video.status_code == 404


@pytest.mark.parametrize("style", ["path", "virtual", "auto"])
def test_the_content_security_policy_allows_the_stores_signed_links(style):
    from lipsync_site.media_storage import media_storage as configured

    _storage, origins = configured(
        backend="s3",
        bucket="media",
        endpoint_url="https://store.example.com:9000",
        addressing_style=style,
    )
    expected = {
        "path": ["https://store.example.com:9000"],
        "virtual": ["https://media.store.example.com:9000"],
        "auto": ["https://store.example.com:9000", "https://media.store.example.com:9000"],
    }[style]
    assert origins == expected
