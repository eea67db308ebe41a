"""Media storage for the tests: the local disk, or a real S3 API on loopback.

`s3_server` starts moto's server mode (moto[server], from PyPI) once per
session in a process of its own, on a port the OS picks, so the storage code
talks HTTP to an S3 API as it would to a bucket in production: boto3 and
django-storages are never mocked. `media_storage` is parametrized over
"local" and "s3": a test that asks for it runs once with each, the S3 run in a
bucket of its own, configured by the same function settings.py uses
(lipsync_site/media_storage.py).

tests/conftest.py registers this module as a plugin.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from lipsync_site.media_storage import media_storage as configured_storage

S3_KEY = "test-key"
S3_SECRET = "test-secret"
S3_REGION = "us-east-1"

# Prints the port the OS chose, then serves until its stdin closes (the test
# session ending, or dying, closes it).
_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def s3_server():
    """The URL of a moto S3 server on 127.0.0.1, for the whole session."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"moto's S3 server did not start (said {line!r})")
        yield f"http://127.0.0.1:{line}"
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )


@dataclass
class MediaStorage:
    backend: str  # "local" or "s3"
    bucket: str = ""
    endpoint: str = ""
    origins: tuple[str, ...] = ()

    def object_names(self) -> set[str]:
        """Every object in the bucket (S3 only)."""
        client = s3_client(self.endpoint)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}


def use_storage(settings, backend: str, *, tmp_path, endpoint: str = "") -> MediaStorage:
    """Point default_storage at the local disk (under tmp_path) or at a new
    bucket on `endpoint`, as the environment would configure it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    if backend == "local":
        settings.STORAGE_BACKEND = "local"
        settings.STORAGES = {**settings.STORAGES, "default": configured_storage(backend="local")[0]}
        return MediaStorage("local")
    bucket = f"studio-{uuid.uuid4().hex[:16]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    storage, origins = configured_storage(
        backend="s3",
        bucket=bucket,
        endpoint_url=endpoint,
        region=S3_REGION,
        access_key=S3_KEY,
        secret_key=S3_SECRET,
        addressing_style="path",
        url_max_age=settings.STORAGE_URL_MAX_AGE,
    )
    settings.STORAGE_BACKEND = "s3"
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.AWS_S3_ENDPOINT_URL = endpoint
    # Setting STORAGES makes Django drop its default_storage (setting_changed).
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    return MediaStorage("s3", bucket=bucket, endpoint=endpoint, origins=tuple(origins))


@pytest.fixture(params=["local", "s3"])
def media_storage(request, settings, tmp_path) -> MediaStorage:
    """The test runs on the local disk, then on S3 (moto on loopback)."""
    endpoint = request.getfixturevalue("s3_server") if request.param == "s3" else ""
    return use_storage(settings, request.param, tmp_path=tmp_path, endpoint=endpoint)
