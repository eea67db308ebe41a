"""The API's tests: a key for alice and bob, API credits, a client that
sends the key, and real media served from loopback for URL inputs."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from django.test import Client

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.models import Pool
from jobs.pipeline import lifecycle
from tests.media_factory import make_audio, make_image, make_video


class ApiClient:
    """Django's test client with a Bearer key, JSON in and out."""

    def __init__(self, raw_key: str | None):
        self.client = Client()
        self.raw = raw_key

    def _headers(self, headers):
        base = {"Authorization": f"Bearer {self.raw}"} if self.raw else {}
        return base | (headers or {})

    def get(self, path: str, headers: dict | None = None, **params):
        return self.client.get(path, params, headers=self._headers(headers))

    def post(self, path: str, body=None, *, headers: dict | None = None):
        return self.client.post(
            path,
            data=json.dumps(body if body is not None else {}),
            content_type="application/json",
            headers=self._headers(headers),
        )

    def post_multipart(self, path: str, data: dict, *, headers: dict | None = None):
        return self.client.post(path, data=data, headers=self._headers(headers))


@pytest.fixture
def alice_key(alice):
    key, raw = api_key_create(owner=alice, name="render script")
    return key, raw


@pytest.fixture
def api(alice_key):
    credits_grant(user=alice_key[0].owner, pool=Pool.API, amount=500, key="grant:alice:api")
    return ApiClient(alice_key[1])


@pytest.fixture
def bob_api(bob):
    _key, raw = api_key_create(owner=bob, name="bob's")
    credits_grant(user=bob, pool=Pool.API, amount=500, key="grant:bob:api")
    return ApiClient(raw)


@pytest.fixture
def no_submit(monkeypatch):
    """Jobs stay queued: the submit task is recorded, not run."""
    queued: list = []
    monkeypatch.setattr(lifecycle, "enqueue", lambda func, *args: queued.append((func, args)))
    return queued


@pytest.fixture(scope="session")
def media_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("api-media")
    files = {
        "face.png": folder / "face.png",
        "voice.mp3": folder / "voice.mp3",
        "other.wav": folder / "other.wav",
        "clip.mp4": folder / "clip.mp4",
        "notes.txt": folder / "notes.txt",
    }
    make_image(files["face.png"], 640, 480, fmt="png")
    make_audio(files["voice.mp3"], 3.0, fmt="mp3")
    make_audio(files["other.wav"], 7.0, fmt="wav", tone_hz=330)
    make_video(files["clip.mp4"], 2.0)
    files["notes.txt"].write_text("not a picture")
    return files


@pytest.fixture
def media_server(serve, media_files, settings):
    """Serves media_files on loopback (FETCH_ALLOW_LOOPBACK on, as for the sandbox)."""
    settings.FETCH_ALLOW_LOOPBACK = True

    def respond(h: BaseHTTPRequestHandler) -> None:
        name = h.path.lstrip("/").split("?", 1)[0]
        path = media_files.get(name)
        data = path.read_bytes() if path else b""
        h.send_response(200 if path else 404)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    server = serve(respond)
    server.link = lambda name: f"{server.url}/{name}"
    return server


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
