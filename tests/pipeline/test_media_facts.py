"""Upload and JobInput share their stored-media facts (jobs/models/media.py):
one function copies them, and one rule says whether a file has a picture,
in Python (the cards) and in SQL (the gallery, the thumbnail view) alike."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.models import Job, JobInput, StoredMedia, Upload, media_facts
from jobs.studio.uploads import upload_copy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_abstract_model_holds_the_facts_both_tables_store():
    for model in (Upload, JobInput):
        assert issubclass(model, StoredMedia)
        names = {f.name for f in model._meta.fields}
        assert set(StoredMedia.FACTS) | {"file", "thumbnail"} <= names


def test_a_copy_of_an_input_has_its_facts_and_its_own_files(alice):
    job = Job.objects.create(
        owner=alice, mode="video_dub", provider="lipsync_studio", provider_model="m",
        resolution="720p",
    )  # fmt: skip
    video = JobInput.objects.create(
        job=job,
        role="video",
        file=default_storage.save("inputs/clip.mp4", ContentFile(b"mp4")),
        thumbnail=default_storage.save("thumbs/clip.webp", ContentFile(b"webp")),
        original_name="clip.mp4",
        content_type="video/mp4",
        size=3,
        duration=4.5,
        width=640,
        height=360,
        sha256="ab" * 32,
    )

    copy = upload_copy(video, owner=alice)

    assert (
        media_facts(copy)
        == media_facts(video)
        == {
            "original_name": "clip.mp4",
            "content_type": "video/mp4",
            "size": 3,
            "duration": 4.5,
            "width": 640,
            "height": 360,
            "sha256": "ab" * 32,  # the duplicate check knows a copy by it
        }
    )
    assert copy.kind == "video"
    assert copy.file.name != video.file.name
    assert default_storage.open(copy.file.name).read() == b"mp4"
    assert default_storage.open(copy.thumbnail.name).read() == b"webp"


@pytest.mark.parametrize(
    ("role", "thumbnail", "pictured"),
    [
        ("image", True, True),
        ("video", True, True),
        ("image", False, False),
        ("mask", True, False),  # an image, but never the job's picture
        ("audio", False, False),
    ],
)
def test_one_rule_says_whether_an_input_has_a_picture(alice, role, thumbnail, pictured):
    job = Job.objects.create(
        owner=alice, mode="video_dub", provider="lipsync_studio", provider_model="m",
        resolution="720p",
    )  # fmt: skip
    inp = JobInput.objects.create(
        job=job, role=role, file="inputs/x", thumbnail="thumbs/x.webp" if thumbnail else "", size=1
    )
    assert inp.has_picture is pictured
    assert JobInput.objects.with_picture().filter(pk=inp.pk).exists() is pictured


@pytest.mark.parametrize(("kind", "pictured"), [("image", True), ("video", True), ("audio", False)])
def test_a_staged_upload_with_a_thumbnail_has_a_picture_by_its_kind(alice, kind, pictured):
    upload = Upload(owner=alice, kind=kind, thumbnail="thumbs/x.webp", size=1)
    assert upload.has_picture is pictured
    assert Upload(owner=alice, kind=kind, size=1).has_picture is False
