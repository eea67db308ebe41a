"""Stored media through Django's storage API, on the local disk and on S3 (a
real S3 API from moto on loopback): the same reads, copies and deletes."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.files.storage import StoredReader, files_delete_unused, local_copy, stored_path

DATA = bytes(range(256)) * 4096  # 1 MiB, every offset distinct mod 256


def test_a_saved_file_reads_back_whole_and_by_range(media_storage):
    name = default_storage.save("outputs/2026/12/job-1.mp4", ContentFile(DATA))
    reader = StoredReader(name)
    assert reader.size == len(DATA)
    assert b"".join(reader.read(0, len(DATA))) == DATA
    assert b"".join(reader.read(1000, 300_000)) == DATA[1000:301_000]
    assert b"".join(reader.read(len(DATA) - 5, 5)) == DATA[-5:]
    assert b"".join(reader.read(10, 0)) == b""


def test_a_second_file_of_the_same_name_never_replaces_the_first(media_storage):
    first = default_storage.save("outputs/job-1.mp4", ContentFile(b"first"))
    second = default_storage.save("outputs/job-1.mp4", ContentFile(b"second"))
    assert first != second
    with default_storage.open(first) as a, default_storage.open(second) as b:
        assert (a.read(), b.read()) == (b"first", b"second")


def test_the_decoders_get_a_real_file_and_a_copy_is_removed_after(media_storage):
    name = default_storage.save("inputs/voice.wav", ContentFile(DATA))
    with local_copy(name) as path:
        assert path.read_bytes() == DATA
        assert path.suffix == ".wav"
    if media_storage.backend == "local":
        assert stored_path(name) == path  # the stored file itself, never copied
        assert path.exists()
    else:
        assert stored_path(name) is None
        assert not path.exists() and not path.parent.exists()


def test_a_missing_file_is_not_found(media_storage):
    with pytest.raises(FileNotFoundError):
        StoredReader("outputs/never-stored.mp4")


@pytest.mark.django_db
def test_deleting_unused_files_removes_them_from_the_store(media_storage):
    names = [default_storage.save(f"outputs/job-{i}.mp4", ContentFile(b"v")) for i in range(3)]
    assert files_delete_unused(names) == 3
    assert not any(default_storage.exists(n) for n in names)
    if media_storage.backend == "s3":
        assert media_storage.object_names() == set()


def test_the_test_storage_really_is_s3_when_it_says_so(media_storage):
    name = default_storage.save("probe.txt", ContentFile(b"here"))
    if media_storage.backend == "s3":
        assert media_storage.object_names() == {name}
        assert type(default_storage._wrapped).__name__ == "S3Storage"
    else:
        assert stored_path(name).read_bytes() == b"here"
