"""The sandbox provider over real HTTP: both contracts, real MP4s, every fault.

Inputs are served by a tiny local file server, as the studio's signed URLs
would be; webhooks go to a tiny local receiver.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import pytest
import requests

from jobs.providers.sandbox import SandboxConfig, SandboxServer
from tests.media_factory import make_audio, make_image, make_video

KEY = "sk_test_sandbox_0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
JOYPIX_SUBMIT = "/v1/lip-sync/motion-2-dialog"
JOYPIX_PHOTO_SUBMIT = "/v1/lip-sync/motion-2"
LEFT_SECONDS, RIGHT_SECONDS, VOICE_SECONDS = 1.0, 1.6, 1.2


# --- fixtures --------------------------------------------------------------------------


class _Files(SimpleHTTPRequestHandler):
    """Serves the media directory; anything under /forbidden/ answers 403."""

    def do_GET(self):
        if self.path.startswith("/forbidden/"):
            self.send_error(403)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def _serve(server: ThreadingHTTPServer):
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    return thread


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """URLs of real media files on a local HTTP server."""
    root = tmp_path_factory.mktemp("inputs")
    make_audio(root / "left.mp3", LEFT_SECONDS, fmt="mp3", tone_hz=220)
    make_audio(root / "right.wav", RIGHT_SECONDS, fmt="wav", tone_hz=330)
    make_audio(root / "voice.m4a", VOICE_SECONDS, fmt="m4a")
    make_image(root / "photo.png", 640, 800, fmt="png")
    make_image(root / "mask.png", 320, 180, fmt="png")
    make_video(root / "clip.mp4", 0.5, 320, 180, fps=10)  # shorter than the audio: looped
    (root / "notes.txt").write_text("not audio\n" * 50)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(root)))
    _serve(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {
        name: f"{base}/{name}"
        for name in (
            "left.mp3",
            "right.wav",
            "voice.m4a",
            "photo.png",
            "mask.png",
            "clip.mp4",
            "notes.txt",
        )
    } | {"forbidden": f"{base}/forbidden/photo.png"}
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_sandbox():
    started: list[SandboxServer] = []

    def _make(**options) -> SandboxServer:
        options = {"api_key": KEY, "rtf": 0.01, "min_delay": 0.2} | options
        sandbox = SandboxServer(SandboxConfig(**options)).start()
        started.append(sandbox)
        return sandbox

    yield _make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox) -> SandboxServer:
    return make_sandbox()


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), json.loads(body), time.monotonic()))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A webhook receiver: .url, .received = [(headers, json, monotonic time)]."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/lipsync"
    _serve(server)
    yield server
    server.shutdown()
    server.server_close()


# --- helpers ---------------------------------------------------------------------------


def dialog_body(files, **extra):
    return {
        "left_audio_url": files["left.mp3"],
        "right_audio_url": files["right.wav"],
        "image_url": files["photo.png"],
        **extra,
    }


def submit_joypix(sandbox, files, **extra) -> str:
    response = requests.post(
        sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files, **extra), headers=AUTH, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["task_id"]


def joypix_task(sandbox, task_id) -> dict:
    response = requests.get(f"{sandbox.url}/v1/tasks/{task_id}", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and body["message"] == "success"
    return body["data"]


def lipsync_job(sandbox, job_id) -> dict:
    response = requests.get(f"{sandbox.url}/api/v1/jobs/{job_id}", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def poll(fetch, done=("completed", "failed"), timeout=20.0) -> tuple[dict, list[str]]:
    """Poll until the status is in `done`; returns the last answer and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = fetch()
        if not seen or seen[-1] != answer["status"]:
            seen.append(answer["status"])
        if answer["status"] in done:
            return answer, seen
        time.sleep(0.05)
    raise AssertionError(f"still {seen[-1]} after {timeout} s")


def download(url: str, dest: Path) -> Path:
    with requests.get(url, stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "video/mp4"
        size = int(response.headers["Content-Length"])
        with open(dest, "wb") as out:
            for chunk in response.iter_content(65536):
                out.write(chunk)
    assert dest.stat().st_size == size > 0
    return dest


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video=0))
        return {
            "video": video.codec_context.name,
            "audio": audio.codec_context.name,
            "size": (video.width, video.height),
            "pix_fmt": video.codec_context.pix_fmt,
            "channels": audio.codec_context.channels,
            "frames": frames,
            "seconds": container.duration / 1_000_000,
        }


# --- routes ----------------------------------------------------------------------------

JOYPIX_405 = {"code": 405, "message": "Method not allowed", "data": None}
LIPSYNC_405 = {"error": "Method not allowed"}


@pytest.mark.parametrize(
    ("method", "path", "with_key", "status", "allow", "body"),
    [
        ("GET", "/_sandbox/health", False, 200, None, {"ok": True}),
        ("POST", "/_sandbox/health", False, 200, None, {"ok": True}),
        # Control: the key first, then the method.
        ("HEAD", "/_sandbox/faults", False, 401, None, ""),
        ("HEAD", "/_sandbox/faults", True, 405, "GET, POST", ""),
        ("POST", "/_sandbox/stats", True, 404, None, {"error": "Not found"}),
        ("GET", "/_sandbox/nope", False, 401, None, {"error": "Unauthorized"}),
        ("GET", "/_sandbox/nope", True, 404, None, {"error": "Not found"}),
        ("POST", "/outputs/nope.mp4", False, 405, "GET, HEAD", "Method not allowed\n"),
        ("GET", "/outputs/nope.mp4", False, 404, None, "Not found\n"),
        # The providers: the method first, then the key; each in its own format.
        ("GET", JOYPIX_SUBMIT, False, 405, "POST", JOYPIX_405),
        ("GET", JOYPIX_PHOTO_SUBMIT, False, 405, "POST", JOYPIX_405),
        (
            "POST",
            JOYPIX_PHOTO_SUBMIT,
            False,
            401,
            None,
            {"code": 401, "message": "Unauthorized", "data": None},
        ),
        (
            "POST",
            "/v1/lip-sync/motion-3",
            True,
            404,
            None,
            {"code": 404, "message": "Not found", "data": None},
        ),
        ("POST", "/v1/tasks/abc", True, 405, "GET", JOYPIX_405),
        (
            "GET",
            "/v1/tasks/",
            True,
            404,
            None,
            {"code": 404, "message": "Task not found", "data": None},
        ),
        ("GET", "/v1/nope", False, 404, None, {"code": 404, "message": "Not found", "data": None}),
        ("POST", "/api/v1/jobs/abc", False, 405, "GET", LIPSYNC_405),
        ("GET", "/api/v1/lipsync-image", True, 405, "POST", LIPSYNC_405),
        ("POST", "/api/v1/lipsync-image", False, 401, None, {"error": "Unauthorized"}),
        ("POST", "/api/v1/jobs", True, 404, None, {"error": "Not found"}),
        ("GET", "/elsewhere", True, 404, None, "Not found\n"),
    ],
)
def test_routes_answer_wrong_methods_keys_and_paths_in_each_format(
    sandbox, method, path, with_key, status, allow, body
):
    response = requests.request(
        method, sandbox.url + path, headers=AUTH if with_key else {}, timeout=5
    )
    assert (response.status_code, response.headers.get("Allow")) == (status, allow)
    if isinstance(body, dict):
        assert response.json() == body
    else:
        assert response.text == body
    assert sandbox.calls[-1].path == path and sandbox.calls[-1].status == status


# --- JoyPix ----------------------------------------------------------------------------


def test_joypix_dialog_renders_a_720p_mp4_as_long_as_the_longer_audio(
    make_sandbox, files, tmp_path
):
    sandbox = make_sandbox(start_delay=0.3)
    task_id = submit_joypix(sandbox, files, resolution="720p", prompt="both smile", seed=7)
    assert task_id.startswith("task_")

    answer, seen = poll(lambda: joypix_task(sandbox, task_id))

    assert seen == ["submitted", "processing", "completed"]
    assert answer["task_id"] == task_id
    assert answer["model"] == "motion-2-dialog"
    assert answer["error"] == ""
    assert json.loads(answer["inputs"]) == {
        **dialog_body(files),
        "resolution": "720p",
        "prompt": "both smile",
        "seed": 7,
    }
    assert answer["video_url"].startswith(f"{sandbox.url}/outputs/")
    info = probe(download(answer["video_url"], tmp_path / "out.mp4"))
    assert info["video"] == "h264" and info["audio"] == "aac"
    assert info["size"] == (1280, 720) and info["pix_fmt"] == "yuv420p"
    assert info["channels"] == 2
    assert abs(info["seconds"] - RIGHT_SECONDS) <= 0.2


def test_joypix_defaults_to_480p(sandbox, files, tmp_path):
    task_id = submit_joypix(sandbox, files)
    answer, _ = poll(lambda: joypix_task(sandbox, task_id))
    assert json.loads(answer["inputs"])["resolution"] == "480p"
    assert probe(download(answer["video_url"], tmp_path / "out.mp4"))["size"] == (854, 480)


def test_calls_keep_each_request_body_and_whether_its_key_was_right(sandbox, files):
    task_id = submit_joypix(sandbox, files, seed=7)
    joypix_task(sandbox, task_id)
    submit, status = sandbox.calls
    assert (submit.method, submit.status, submit.key_ok) == ("POST", 200, True)
    assert json.loads(submit.body) == dialog_body(files, seed=7)
    assert (status.method, status.body, status.key_ok) == ("GET", b"", True)
    requests.get(f"{sandbox.url}/_sandbox/health", timeout=5)
    assert sandbox.calls[-1].key_ok is None  # the route asks for no key


def test_wait_idle_waits_until_every_task_is_done(make_sandbox, files):
    sandbox = make_sandbox(start_delay=0.5)
    task_id = submit_joypix(sandbox, files)
    with pytest.raises(TimeoutError, match="1 sandbox task"):
        sandbox.wait_idle(timeout=0.05)
    sandbox.wait_idle()
    assert sandbox.tasks[task_id].status == "completed"


def test_joypix_task_status_starts_at_submitted(make_sandbox, files):
    sandbox = make_sandbox(start_delay=5)
    task_id = submit_joypix(sandbox, files)
    answer = joypix_task(sandbox, task_id)
    assert answer["status"] == "submitted"
    assert answer["video_url"] == ""


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_joypix_refuses_a_missing_or_wrong_key(sandbox, files, headers):
    response = requests.post(
        sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=headers, timeout=5
    )
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "Unauthorized", "data": None}
    assert sandbox.tasks == {}
    [call] = sandbox.calls
    assert (call.status, call.key_ok) == (401, False)
    assert json.loads(call.body) == dialog_body(files)
    assert (
        requests.get(f"{sandbox.url}/v1/tasks/task_x", headers=headers, timeout=5).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_url": None}, "image_url is required"),
        ({"left_audio_url": ""}, "left_audio_url is required"),
        ({"right_audio_url": "ftp://example.com/a.mp3"}, "right_audio_url must be an http(s) URL"),
        ({"resolution": "1080p"}, "resolution must be one of 480p, 720p"),
        ({"seed": "42"}, "seed must be an integer (-1 for random)"),
    ],
)
def test_joypix_refuses_a_body_off_the_contract(sandbox, files, change, message):
    body = {k: v for k, v in (dialog_body(files) | change).items() if v is not None}
    response = requests.post(sandbox.url + JOYPIX_SUBMIT, json=body, headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": message, "data": None}
    assert sandbox.tasks == {}


def photo_body(files, **extra):
    return {"audio_url": files["voice.m4a"], "image_url": files["photo.png"], **extra}


def test_joypix_motion_2_renders_a_talking_photo_as_long_as_its_audio(
    make_sandbox, files, tmp_path
):
    sandbox = make_sandbox(start_delay=0.3)
    body = photo_body(files, resolution="720p", prompt="smiles", seed=3)
    response = requests.post(sandbox.url + JOYPIX_PHOTO_SUBMIT, json=body, headers=AUTH, timeout=5)

    # motion-2's submit answer carries status "submitted" beside the task id.
    assert response.status_code == 200, response.text
    submitted = response.json()
    task_id = submitted["data"]["task_id"]
    assert task_id.startswith("task_")
    assert submitted == {
        "code": 0,
        "message": "success",
        "data": {"task_id": task_id, "status": "submitted"},
    }
    assert sandbox.submissions == {JOYPIX_PHOTO_SUBMIT: 1}

    answer, seen = poll(lambda: joypix_task(sandbox, task_id))
    assert seen == ["submitted", "processing", "completed"]
    assert answer["model"] == "motion-2"
    assert json.loads(answer["inputs"]) == body
    info = probe(download(answer["video_url"], tmp_path / "out.mp4"))
    assert info["video"] == "h264" and info["audio"] == "aac"
    assert info["size"] == (1280, 720)
    assert abs(info["seconds"] - VOICE_SECONDS) <= 0.2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"audio_url": None}, "audio_url is required"),
        ({"image_url": "ftp://example.com/p.png"}, "image_url must be an http(s) URL"),
        ({"resolution": "1080p"}, "resolution must be one of 480p, 720p"),
    ],
)
def test_joypix_motion_2_refuses_a_body_off_the_contract(sandbox, files, change, message):
    body = {k: v for k, v in (photo_body(files) | change).items() if v is not None}
    response = requests.post(sandbox.url + JOYPIX_PHOTO_SUBMIT, json=body, headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"code": 400, "message": message, "data": None}
    assert sandbox.tasks == {}


def test_joypix_motion_2_does_not_take_a_dialog(sandbox, files):
    response = requests.post(
        sandbox.url + JOYPIX_PHOTO_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["message"] == "audio_url is required"


def test_joypix_refuses_a_body_that_is_not_json(sandbox):
    response = requests.post(
        sandbox.url + JOYPIX_SUBMIT, data=b"left_audio_url=x", headers=AUTH, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Request body must be a JSON object"


def test_joypix_answers_404_for_an_unknown_task(sandbox):
    response = requests.get(f"{sandbox.url}/v1/tasks/task_nope", headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "Task not found", "data": None}


def test_a_lipsync_job_is_not_a_joypix_task(sandbox, files):
    response = requests.post(
        f"{sandbox.url}/api/v1/lipsync-image",
        headers=AUTH,
        timeout=5,
        json={"formState": {"image": files["photo.png"], "audio": files["voice.m4a"]}},
    )
    job_id = response.json()["id"]
    assert (
        requests.get(f"{sandbox.url}/v1/tasks/{job_id}", headers=AUTH, timeout=5).status_code == 404
    )


# --- lipsync.studio -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "form", "seconds", "size"),
    [
        ("lipsync-image", {"image": "photo.png", "audio": "voice.m4a"}, VOICE_SECONDS, (854, 480)),
        (
            "lipsync-image-multi",
            {
                "image": "photo.png",
                "left_audio": "left.mp3",
                "right_audio": "right.wav",
                "order": "meanwhile",
                "resolution": "720p",
            },
            RIGHT_SECONDS,
            (1280, 720),
        ),
        (
            "lipsync-video",
            {
                "video": "clip.mp4",
                "audio": "voice.m4a",
                "mask_image": "mask.png",
                "resolution": "720p",
                "prompt": "calm",
                "seed": 42,
            },
            VOICE_SECONDS,
            (1280, 720),
        ),
    ],
)
def test_lipsync_studio_each_model_renders_an_mp4(
    sandbox, files, tmp_path, model, form, seconds, size
):
    form_state = {k: files[v] if v in files else v for k, v in form.items()}
    response = requests.post(
        f"{sandbox.url}/api/v1/{model}", json={"formState": form_state}, headers=AUTH, timeout=5
    )
    assert response.status_code == 200, response.text
    submitted = response.json()
    assert submitted["status"] == "processing" and set(submitted) == {"id", "status"}

    job, seen = poll(lambda: lipsync_job(sandbox, submitted["id"]))

    assert seen == ["processing", "completed"]
    assert job["id"] == submitted["id"] and job["model"] == model
    assert job["error"] == "" and job["timings"] is None
    assert isinstance(job["executionTime"], int) and job["executionTime"] >= 150
    info = probe(download(job["output"], tmp_path / "out.mp4"))
    assert (info["video"], info["audio"], info["size"]) == ("h264", "aac", size)
    assert abs(info["seconds"] - seconds) <= 0.2
    assert info["frames"] >= seconds * 12 - 1


def channel_levels(path: Path, start: float, end: float) -> tuple[float, float]:
    """The RMS of the left and right channels of a video's audio between two times."""
    sums, count = [0.0, 0.0], 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            frame_start = float(frame.time)
            if frame_start + frame.samples / frame.sample_rate <= start or frame_start >= end:
                continue
            assert frame.format.name == "fltp" and len(frame.planes) == 2
            channels = [
                memoryview(bytes(plane)[: 4 * frame.samples]).cast("f") for plane in frame.planes
            ]
            for i in range(frame.samples):
                if start <= frame_start + i / frame.sample_rate < end:
                    sums[0] += channels[0][i] ** 2
                    sums[1] += channels[1][i] ** 2
                    count += 1
    assert count, "no samples in that stretch"
    return (sums[0] / count) ** 0.5, (sums[1] / count) ** 0.5


@pytest.mark.parametrize(
    ("order", "seconds"),
    [
        ("sequential", LEFT_SECONDS + RIGHT_SECONDS),
        ("meanwhile", RIGHT_SECONDS),
        (None, LEFT_SECONDS + RIGHT_SECONDS),  # left out: "otherwise", the sum
    ],
)
def test_lipsync_studio_multi_plays_the_clips_in_the_order_asked(
    sandbox, files, tmp_path, order, seconds
):
    """Taking turns: the left voice (left channel), then the right one (right
    channel), the video as long as both; at once: both from the start, as long
    as the longer. lipsync.studio bills the output's length either way."""
    form = {
        "image": files["photo.png"],
        "left_audio": files["left.mp3"],
        "right_audio": files["right.wav"],
    } | ({"order": order} if order else {})
    response = requests.post(
        f"{sandbox.url}/api/v1/lipsync-image-multi",
        json={"formState": form},
        headers=AUTH,
        timeout=5,
    )
    assert response.status_code == 200, response.text

    job, _seen = poll(lambda: lipsync_job(sandbox, response.json()["id"]))

    assert job["status"] == "completed", job["error"]
    path = download(job["output"], tmp_path / "out.mp4")
    assert abs(probe(path)["seconds"] - seconds) <= 0.2
    first_left, first_right = channel_levels(path, 0.2, LEFT_SECONDS - 0.2)
    then_left, then_right = channel_levels(path, LEFT_SECONDS + 0.2, seconds - 0.2)
    assert first_left > 0.05 and then_right > 0.05  # whoever speaks is heard
    if order == "meanwhile":
        assert first_right > 0.05  # both at once
    else:
        assert first_right < 0.01 and then_left < 0.01  # one after the other


def test_lipsync_studio_processing_answer_has_no_output(make_sandbox, files):
    sandbox = make_sandbox(start_delay=5)
    response = requests.post(
        f"{sandbox.url}/api/v1/lipsync-image",
        headers=AUTH,
        timeout=5,
        json={"formState": {"image": files["photo.png"], "audio": files["voice.m4a"]}},
    )
    job_id = response.json()["id"]
    assert lipsync_job(sandbox, job_id) == {
        "id": job_id,
        "model": "lipsync-image",
        "status": "processing",
        "output": None,
        "error": "",
        "executionTime": None,
        "timings": None,
    }


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("lipsync-image", {"image": "x"}, "formState is required"),
        ("lipsync-image", {"formState": {"image": "http://h/p.png"}}, "audio is required"),
        (
            "lipsync-image-multi",
            {"formState": {"image": "http://h/p.png", "audio": "http://h/a"}},
            "left_audio is required",
        ),
        (
            "lipsync-video",
            {"formState": {"video": "http://h/v", "audio": "http://h/a", "resolution": "4k"}},
            "resolution must be one of 480p, 720p",
        ),
        (
            "lipsync-image-multi",
            {
                "formState": {
                    "image": "http://h/p.png",
                    "left_audio": "http://h/l",
                    "right_audio": "http://h/r",
                    "order": "together",
                }
            },
            "order must be one of sequential, meanwhile",
        ),
        (
            "lipsync-image",
            {"webhook": "not a url", "formState": {}},
            "webhook must be an http(s) URL",
        ),
    ],
)
def test_lipsync_studio_refuses_a_body_off_the_contract(sandbox, model, body, message):
    response = requests.post(f"{sandbox.url}/api/v1/{model}", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert sandbox.tasks == {}


def test_lipsync_studio_refuses_a_missing_key_and_unknown_jobs(sandbox):
    response = requests.post(f"{sandbox.url}/api/v1/lipsync-image", json={}, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}
    response = requests.get(f"{sandbox.url}/api/v1/jobs/nope", headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found"}


# --- input fetching ----------------------------------------------------------------------


def test_an_input_that_cannot_be_fetched_fails_the_task(sandbox, files):
    task_id = submit_joypix(sandbox, files, image_url=files["forbidden"])
    answer, _ = poll(lambda: joypix_task(sandbox, task_id))
    assert answer["status"] == "failed"
    assert answer["error"] == "Could not fetch image_url: HTTP 403"
    assert answer["video_url"] == ""


def test_an_input_that_is_not_audio_fails_the_task(sandbox, files):
    response = requests.post(
        f"{sandbox.url}/api/v1/lipsync-image",
        headers=AUTH,
        timeout=5,
        json={"formState": {"image": files["photo.png"], "audio": files["notes.txt"]}},
    )
    job, _ = poll(lambda: lipsync_job(sandbox, response.json()["id"]))
    assert job["status"] == "failed"
    assert job["error"] == "Could not decode audio as audio"
    assert job["output"] is None


def test_an_input_over_the_size_cap_fails_the_task(make_sandbox, files):
    sandbox = make_sandbox(max_input_bytes=1000)
    task_id = submit_joypix(sandbox, files)
    answer, _ = poll(lambda: joypix_task(sandbox, task_id))
    assert answer["status"] == "failed"
    assert answer["error"].startswith("Could not fetch left_audio_url: larger than")


# --- faults: submit --------------------------------------------------------------------


def test_submit_429_carries_retry_after_and_creates_no_task(sandbox, files):
    sandbox.faults.update({"submit_429": 2, "retry_after": 7})
    for _ in range(2):
        response = requests.post(
            sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=5
        )
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["code"] == 429
    assert sandbox.tasks == {}
    submit_joypix(sandbox, files)  # the count is used up
    assert len(sandbox.tasks) == 1
    assert sandbox.submissions == {JOYPIX_SUBMIT: 3}
    assert [(c.status, c.fault) for c in sandbox.calls] == [
        (429, "submit_429"),
        (429, "submit_429"),
        (200, None),
    ]


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        ("submit_503", 503, "application/json"),
        ("submit_502", 502, "text/html"),
    ],
)
def test_submit_refusals_create_no_task(sandbox, files, fault, status, content_type):
    sandbox.faults.update({fault: 1})
    response = requests.post(
        f"{sandbox.url}/api/v1/lipsync-image",
        headers=AUTH,
        timeout=5,
        json={"formState": {"image": files["photo.png"], "audio": files["voice.m4a"]}},
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == content_type
    assert sandbox.tasks == {}


@pytest.mark.parametrize(("fault", "status"), [("submit_500", 500), ("submit_504", 504)])
def test_submit_500_and_504_create_the_task_anyway(sandbox, files, fault, status):
    sandbox.faults.update({fault: 1})
    response = requests.post(
        sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=5
    )
    assert response.status_code == status
    (task,) = sandbox.tasks.values()
    assert sandbox.wait_for(task.id).status == "completed"  # the provider did the work


def test_submit_timeout_keeps_the_client_waiting_but_creates_the_task(sandbox, files):
    sandbox.faults.update({"submit_timeout": 1, "timeout_seconds": 1.5})
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=(2, 0.5)
        )
    assert len(sandbox.tasks) == 1
    # A client with patience gets the normal answer.
    sandbox.faults.update({"submit_timeout": 1, "timeout_seconds": 0.3})
    started = time.monotonic()
    task_id = submit_joypix(sandbox, files)
    assert time.monotonic() - started >= 0.3
    assert task_id in sandbox.tasks


def test_submit_reset_closes_the_connection_without_an_answer(sandbox, files):
    sandbox.faults.update({"submit_reset": 1})
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{sandbox.url}/api/v1/lipsync-image",
            headers=AUTH,
            timeout=5,
            json={"formState": {"image": files["photo.png"], "audio": files["voice.m4a"]}},
        )
    assert len(sandbox.tasks) == 1
    assert sandbox.calls[-1].status is None and sandbox.calls[-1].fault == "submit_reset"
    submit_joypix(sandbox, files)  # the server is fine afterwards


def test_submit_malformed_not_json(sandbox, files):
    sandbox.faults.update({"submit_malformed": 1})
    response = requests.post(
        sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=5
    )
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert len(sandbox.tasks) == 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (JOYPIX_SUBMIT, {"code": 0, "message": "success", "data": {}}),
        ("/api/v1/lipsync-image-multi", {"status": "processing"}),
    ],
)
def test_submit_malformed_no_id(sandbox, files, path, expected):
    sandbox.faults.update({"submit_malformed": 1, "malformed_kind": "no_id"})
    body = (
        dialog_body(files)
        if path == JOYPIX_SUBMIT
        else {
            "formState": {
                "image": files["photo.png"],
                "left_audio": files["left.mp3"],
                "right_audio": files["right.wav"],
            }
        }
    )
    response = requests.post(sandbox.url + path, json=body, headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert response.json() == expected


def test_a_fault_of_minus_one_applies_until_cleared(sandbox, files):
    sandbox.faults.update({"submit_503": -1})
    for _ in range(3):
        assert (
            requests.post(
                sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=5
            ).status_code
            == 503
        )
    sandbox.faults.clear()
    submit_joypix(sandbox, files)


# --- faults: poll and task ---------------------------------------------------------------


def test_poll_429_and_500(sandbox, files):
    task_id = submit_joypix(sandbox, files)
    sandbox.faults.update({"poll_429": 1, "poll_500": 1, "retry_after": 3})
    url = f"{sandbox.url}/v1/tasks/{task_id}"
    first = requests.get(url, headers=AUTH, timeout=5)
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    second = requests.get(url, headers=AUTH, timeout=5)
    assert second.status_code == 500
    assert second.json() == {"code": 500, "message": "Internal server error", "data": None}
    assert joypix_task(sandbox, task_id)["task_id"] == task_id


def test_poll_malformed(sandbox, files):
    task_id = submit_joypix(sandbox, files)
    sandbox.faults.update({"poll_malformed": 1})
    response = requests.get(f"{sandbox.url}/v1/tasks/{task_id}", headers=AUTH, timeout=5)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    sandbox.faults.update({"poll_malformed": 1, "malformed_kind": "no_id"})
    response = requests.get(f"{sandbox.url}/v1/tasks/{task_id}", headers=AUTH, timeout=5)
    assert response.json() == {"code": 0, "message": "success", "data": {}}


def test_task_fail_ends_failed_with_the_message(sandbox, files):
    sandbox.faults.update({"task_fail": 1})
    task_id = submit_joypix(sandbox, files)
    answer, seen = poll(lambda: joypix_task(sandbox, task_id))
    assert seen[-2:] == ["processing", "failed"]
    assert answer["error"] == "Face not detected in image"
    assert answer["video_url"] == ""
    assert sandbox.faults.task_fail == 0


def test_never_finish_stays_processing(sandbox, files):
    sandbox.faults.update({"never_finish": 1})
    task_id = submit_joypix(sandbox, files)
    other = submit_joypix(sandbox, files)  # only that one task
    sandbox.wait_idle()  # both tasks' work has ended: nothing more will change
    assert joypix_task(sandbox, task_id)["status"] == "processing"
    assert joypix_task(sandbox, other)["status"] == "completed"


# --- webhooks (lipsync.studio) ------------------------------------------------------------


def _submit_with_webhook(sandbox, files, receiver) -> str:
    response = requests.post(
        f"{sandbox.url}/api/v1/lipsync-image",
        headers=AUTH,
        timeout=5,
        json={
            "webhook": receiver.url,
            "formState": {"image": files["photo.png"], "audio": files["voice.m4a"], "seed": 3},
        },
    )
    assert response.status_code == 200
    return response.json()["id"]


def _wait_received(receiver, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.received) >= count, receiver.received


def test_webhook_posts_the_documented_body_on_completion(sandbox, files, receiver):
    job_id = _submit_with_webhook(sandbox, files, receiver)
    _wait_received(receiver, 1)
    headers, body, _ = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    assert body == lipsync_job(sandbox, job_id)
    assert body["status"] == "completed" and body["model"] == "lipsync-image"
    assert set(body) == {"id", "model", "status", "output", "error", "executionTime", "timings"}
    assert requests.get(body["output"], timeout=5).status_code == 200
    sandbox.wait_idle()  # the task's work is over, its webhooks sent
    assert len(receiver.received) == 1


def test_webhook_on_failure(sandbox, files, receiver):
    sandbox.faults.update({"task_fail": 1, "fail_message": "Invalid audio format"})
    job_id = _submit_with_webhook(sandbox, files, receiver)
    _wait_received(receiver, 1)
    assert receiver.received[0][1] == {
        "id": job_id,
        "model": "lipsync-image",
        "status": "failed",
        "output": None,
        "error": "Invalid audio format",
        "executionTime": None,
        "timings": None,
    }


def test_webhook_never(sandbox, files, receiver):
    sandbox.faults.update({"webhook_never": 1})
    job_id = _submit_with_webhook(sandbox, files, receiver)
    sandbox.wait_idle()  # the task's work is over: a webhook would have been sent
    assert sandbox.tasks[job_id].status == "completed"
    assert receiver.received == [] and sandbox.webhooks == []
    # The next job's webhook does arrive.
    _submit_with_webhook(sandbox, files, receiver)
    _wait_received(receiver, 1)


def test_webhook_twice(sandbox, files, receiver):
    sandbox.faults.update({"webhook_twice": 1})
    _submit_with_webhook(sandbox, files, receiver)
    _wait_received(receiver, 2)
    assert receiver.received[0][1] == receiver.received[1][1]
    sandbox.wait_idle()  # the sandbox records a delivery once the receiver's answer is read
    assert [d.result for d in sandbox.webhooks] == [200, 200]
    assert len(receiver.received) == 2


def test_webhook_early_announces_an_output_that_does_not_exist_yet(make_sandbox, files, receiver):
    sandbox = make_sandbox(min_delay=1.0)
    sandbox.faults.update({"webhook_early": 1})
    job_id = _submit_with_webhook(sandbox, files, receiver)
    _wait_received(receiver, 1)
    early = receiver.received[0][1]
    assert early["status"] == "completed"
    assert lipsync_job(sandbox, job_id)["status"] == "processing"
    assert requests.get(early["output"], timeout=5).status_code == 404
    _wait_received(receiver, 2)  # then the real one
    assert receiver.received[1][1]["output"] == early["output"]
    assert requests.get(early["output"], timeout=5).status_code == 200


def test_webhook_does_not_follow_redirects(sandbox, files, receiver):
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", receiver.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    _serve(redirector)
    try:
        response = requests.post(
            f"{sandbox.url}/api/v1/lipsync-image",
            headers=AUTH,
            timeout=5,
            json={
                "webhook": f"http://127.0.0.1:{redirector.server_address[1]}/hook",
                "formState": {"image": files["photo.png"], "audio": files["voice.m4a"]},
            },
        )
        sandbox.wait_idle()  # the task's work is over, its webhook sent
        assert sandbox.tasks[response.json()["id"]].status == "completed"
        assert [d.result for d in sandbox.webhooks] == [307]
        assert receiver.received == []
    finally:
        redirector.shutdown()
        redirector.server_close()


# --- outputs -------------------------------------------------------------------------------


def test_output_expires_after_its_ttl(make_sandbox, files):
    sandbox = make_sandbox(output_ttl_seconds=0.8)
    task_id = submit_joypix(sandbox, files)
    answer, _ = poll(lambda: joypix_task(sandbox, task_id))
    url = answer["video_url"]
    head = requests.head(url, timeout=5)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0
    file = sandbox.outputs_dir / url.rsplit("/", 1)[1]
    assert file.exists()
    expires = sandbox.tasks[task_id].completed_at + 0.8  # completion + output_ttl_seconds
    time.sleep(max(0.0, expires - time.time()) + 0.05)  # until just past it
    assert requests.get(url, timeout=5).status_code == 404
    assert not file.exists()


def test_outputs_are_served_only_by_their_exact_name(sandbox):
    for name in ("../outputs", "nope.mp4", "0" * 32 + ".mp4"):
        assert requests.get(f"{sandbox.url}/outputs/{name}", timeout=5).status_code == 404


# --- control from another process ----------------------------------------------------------


def test_faults_can_be_set_over_http_with_the_key(sandbox, files):
    url = f"{sandbox.url}/_sandbox/faults"
    assert requests.post(url, json={"submit_503": 1}, timeout=5).status_code == 401
    response = requests.post(url, json={"submit_503": 1}, headers=AUTH, timeout=5)
    assert response.status_code == 200 and response.json()["submit_503"] == 1
    bad = requests.post(url, json={"submit_503": "lots", "poll_500": 1}, headers=AUTH, timeout=5)
    assert bad.status_code == 400
    assert sandbox.faults.poll_500 == 0  # all or nothing
    assert (
        requests.post(
            sandbox.url + JOYPIX_SUBMIT, json=dialog_body(files), headers=AUTH, timeout=5
        ).status_code
        == 503
    )
    assert requests.get(url, headers=AUTH, timeout=5).json()["submit_503"] == 0
    stats = requests.get(f"{sandbox.url}/_sandbox/stats", headers=AUTH, timeout=5).json()
    assert stats["submissions"] == {JOYPIX_SUBMIT: 1} and stats["tasks"] == {}


def test_the_management_command_runs_in_the_foreground(tmp_path):
    root = Path(__file__).resolve().parents[2]
    secret = "sk_secret_never_printed_42"
    env = os.environ | {
        "SANDBOX_API_KEY": secret,
        "SANDBOX_FAULTS": '{"submit_503": 2}',
        "DATA_DIR": str(tmp_path),
    }
    env.pop("SANDBOX_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "--port",
            "0",
            "--storage-dir",
            str(tmp_path / "sb"),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        while line and "lipsync.studio) listening on" not in line:
            line = process.stdout.readline()
        url = line.rsplit(" ", 1)[1].strip()
        faults = requests.get(
            f"{url}/_sandbox/faults", timeout=5, headers={"Authorization": f"Bearer {secret}"}
        ).json()
        assert faults["submit_503"] == 2
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0
    assert "stopped" in output
    assert secret not in line + output


@pytest.mark.parametrize(
    "second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c-twice", "then-stop"]
)
def test_the_management_command_stops_cleanly_when_signalled_twice(tmp_path, second):
    """From a terminal, Ctrl-C reaches the sandbox directly and again as the run
    command's stop (SIGTERM), or as a second press: one clean stop, no traceback."""
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", "--port", "0", "--storage-dir", str(tmp_path)],
        cwd=root,
        env=os.environ | {"DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        while line and "Ctrl-C stops." not in line:
            line = process.stdout.readline()
        assert "Ctrl-C stops." in line
        process.send_signal(signal.SIGINT)
        time.sleep(0.02)  # two signals, not one: the kernel merges signals sent at once
        process.send_signal(second)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "Traceback" not in output, output
    assert "Sandbox provider stopped." in output
    assert process.returncode == 0


# --- fault rates, submissions per job, state kept across a restart ----------------------------


def _draw(rates: dict, seed: int, name: str, n: int = 200) -> list[bool]:
    from jobs.providers.sandbox import Faults

    faults = Faults()
    faults.update({"rates": rates, "seed": seed})
    return [faults.take(name) for _ in range(n)]


def test_fault_rates_are_drawn_from_the_seed():
    first = _draw({"poll_500": 0.3}, seed=7, name="poll_500")
    assert first == _draw({"poll_500": 0.3, "submit_429": 0.5}, seed=7, name="poll_500")
    assert first != _draw({"poll_500": 0.3}, seed=8, name="poll_500")
    assert 40 <= sum(first) <= 80  # about 30 % of 200
    assert not any(_draw({"poll_500": 0.3}, seed=7, name="poll_429"))


def test_a_count_applies_before_the_rate():
    from jobs.providers.sandbox import Faults

    faults = Faults()
    faults.update({"poll_500": 2, "rates": {"poll_500": 0.0}})
    assert [faults.take("poll_500") for _ in range(3)] == [True, True, False]


def test_one_fault_rate_spreads_over_each_kind_of_request():
    from jobs.providers.sandbox import Faults

    faults = Faults()
    faults.update({"fault_rate": 0.2, "seed": 3, "rates": {"task_fail": 0.0}})
    submit = ("submit_429", "submit_503", "submit_502", "submit_500", "submit_reset")
    hits = sum(any(faults.take(name) for name in submit) for _ in range(2000))
    assert 340 <= hits <= 460  # about 20 % of submissions meet one fault
    assert "task_fail" not in faults.rates  # a rate given beside it wins
    with pytest.raises(ValueError):
        faults.update({"fault_rate": 1.5})
    with pytest.raises(ValueError):
        faults.update({"rates": {"no_such_fault": 0.1}})


def test_fault_rates_can_be_set_over_http(sandbox):
    url = f"{sandbox.url}/_sandbox/faults"
    answer = requests.post(url, json={"rates": {"poll_500": 1}, "seed": 5}, headers=AUTH, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["rates"] == {"poll_500": 1.0} and answer.json()["seed"] == 5
    status = requests.get(f"{sandbox.url}/v1/tasks/task_nope", headers=AUTH, timeout=5)
    assert status.status_code == 500
    assert requests.post(url, json={"clear": True}, headers=AUTH, timeout=5).json()["rates"] == {}
    stats = requests.get(f"{sandbox.url}/_sandbox/stats", headers=AUTH, timeout=5).json()
    assert stats["answers"] == {"poll": 1} and stats["faulted"] == {"poll_500": 1}


def test_a_dropped_or_slow_status_answer_leaves_the_task_going_on(sandbox, files):
    task_id = submit_joypix(sandbox, files)
    sandbox.faults.update({"poll_reset": 1, "poll_slow": 1, "slow_poll_seconds": 0.5})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox.url}/v1/tasks/{task_id}", headers=AUTH, timeout=5)
    started = time.monotonic()
    assert joypix_task(sandbox, task_id)["task_id"] == task_id
    assert time.monotonic() - started >= 0.5
    answer, _ = poll(lambda: joypix_task(sandbox, task_id))
    assert answer["status"] == "completed"


def test_submissions_are_counted_per_job_by_their_inputs_names(sandbox, files):
    sandbox.faults.update({"submit_429": 1, "submit_500": 1})
    url = sandbox.url + JOYPIX_SUBMIT
    assert requests.post(url, json=dialog_body(files), headers=AUTH, timeout=5).status_code == 429
    assert requests.post(url, json=dialog_body(files), headers=AUTH, timeout=5).status_code == 500
    # The same job's inputs behind freshly signed links: the same key.
    other_links = {k: f"{v}?token=2" for k, v in dialog_body(files).items()}
    assert requests.post(url, json=other_links, headers=AUTH, timeout=5).status_code == 200
    photo = requests.post(
        sandbox.url + JOYPIX_PHOTO_SUBMIT, json=photo_body(files), headers=AUTH, timeout=5
    )
    assert photo.status_code == 200
    counts = requests.get(f"{sandbox.url}/_sandbox/submissions", headers=AUTH, timeout=5)
    assert counts.json() == {
        "left.mp3+photo.png+right.wav": {"posts": 3, "tasks": 2},
        "photo.png+voice.m4a": {"posts": 1, "tasks": 1},
    }
    assert requests.get(f"{sandbox.url}/_sandbox/submissions", timeout=5).status_code == 401


def test_kept_state_survives_a_restart(make_sandbox, files, tmp_path):
    storage = tmp_path / "sb"
    first = make_sandbox(storage_dir=storage, keep_state=True)
    done = submit_joypix(first, files)
    poll(lambda: joypix_task(first, done))
    first.faults.update({"never_finish": 1})
    stuck = submit_joypix(first, files)
    first.stop()

    second = make_sandbox(storage_dir=storage, keep_state=True)
    finished = joypix_task(second, done)
    assert finished["status"] == "completed"
    assert requests.get(finished["video_url"], timeout=5).status_code == 200  # output kept
    assert joypix_task(second, stuck)["status"] in ("submitted", "processing")
    assert second.by_key == {"left.mp3+photo.png+right.wav": {"posts": 2, "tasks": 2}}
    assert second.answers["by_kind"]["submit"] == 2


def test_an_unfinished_task_goes_on_after_a_restart(make_sandbox, files, tmp_path):
    storage = tmp_path / "sb"
    first = make_sandbox(storage_dir=storage, keep_state=True, start_delay=30)
    task_id = submit_joypix(first, files)
    first.stop()
    second = make_sandbox(storage_dir=storage, keep_state=True)
    answer, _ = poll(lambda: joypix_task(second, task_id))
    assert answer["status"] == "completed"


def test_the_management_command_takes_fault_rates_from_its_arguments(tmp_path):
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "--port",
            "0",
            "--storage-dir",
            str(tmp_path / "sb"),
            "--fault-rate",
            "0.2",
            "--fault-seed",
            "9",
            "--keep-state",
        ],
        cwd=root,
        env=os.environ | {"DATA_DIR": str(tmp_path), "SANDBOX_API_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        while line and "lipsync.studio) listening on" not in line:
            line = process.stdout.readline()
        url = line.rsplit(" ", 1)[1].strip()
        faults = requests.get(f"{url}/_sandbox/faults", headers=AUTH, timeout=5).json()
        assert faults["seed"] == 9 and faults["rates"]["output_slow"] == 0.2
        assert (tmp_path / "sb" / "journal.jsonl").exists()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
