"""Uploads are refused as soon as they pass the limit: a request declaring
more than its page takes is answered before its body is read, and a file
that passes MAX_UPLOAD_MB while it streams stops being written at once. Either
way the member reads the same message where they are looking, and no
temporary file is left behind.

Most tests drive the WSGI handler (the test client's, with the CSRF check
on) with a request body made on demand, which records how much of it the
server read and the largest temporary upload file on disk while it was read."""

import io
import re
import select
import socket
import sys
import time
from pathlib import Path

import pytest
from django.test.client import ClientHandler

from jobs.models import Upload
from tests.media_factory import make_audio, make_image

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
BOUNDARY = "----LimitsTestBoundary7MA4YWxkTrZu0gW"
CSRF = "a" * 32  # a cookie secret, sent back in the header as htmx does


@pytest.fixture
def temp_dir(settings, tmp_path):
    """Where Django puts uploads while they arrive (empty when nothing is left)."""
    path = tmp_path / "upload-temp"
    path.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(path)
    return path


@pytest.fixture
def two_mb(settings, tmp_path, temp_dir):
    settings.MAX_UPLOAD_MB = 2
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def session(client, alice) -> str:
    client.force_login(alice)
    return client.cookies["sessionid"].value


class Body(io.RawIOBase):
    """A multipart body made while it is read: each part is bytes, or a
    number of filler bytes (a file's contents, never held in memory)."""

    def __init__(self, pieces: list[bytes | int], temp_dir: Path):
        self.pieces = list(pieces)
        self.length = sum(p if isinstance(p, int) else len(p) for p in pieces)
        self.temp_dir = temp_dir
        self.read_bytes = 0
        self.largest_temp_file = 0

    def readable(self):
        return True

    def read(self, size=-1):
        self._look_at_temp_files()
        out = bytearray()
        while self.pieces and (size is None or size < 0 or len(out) < size):
            want = sys.maxsize if size is None or size < 0 else size - len(out)
            piece = self.pieces[0]
            if isinstance(piece, int):
                take = min(piece, want)
                out += b"\0" * take
                rest = piece - take
            else:
                out += piece[:want]
                rest = piece[want:]
            if rest:
                self.pieces[0] = rest
            else:
                self.pieces.pop(0)
        self.read_bytes += len(out)
        return bytes(out)

    def readline(self, size=-1):  # Django never reads a multipart body by lines
        raise AssertionError("unexpected readline")

    def _look_at_temp_files(self):
        for entry in self.temp_dir.iterdir():
            self.largest_temp_file = max(self.largest_temp_file, entry.stat().st_size)


def multipart(
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes | int]],
    after: dict[str, str] | None = None,
) -> list:
    """The parts in the order a browser sends a form: `fields`, `files`, then
    the fields placed `after` the file inputs."""

    def field(name, value):
        return (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )

    pieces: list[bytes | int] = [field(name, value) for name, value in fields.items()]
    for name, (filename, content) in files.items():
        pieces.append(
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        pieces += [content, b"\r\n"]
    pieces += [field(name, value) for name, value in (after or {}).items()]
    pieces.append(f"--{BOUNDARY}--\r\n".encode())
    return pieces


def post(path: str, body: Body, *, session: str, htmx: bool = True) -> tuple[int, str]:
    """POST `body` through the WSGI handler; (status, page)."""
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(body.length),
        "HTTP_COOKIE": f"sessionid={session}; csrftoken={CSRF}",
        "HTTP_X_CSRFTOKEN": CSRF,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if htmx:
        environ["HTTP_HX_REQUEST"] = "true"
    response = ClientHandler(enforce_csrf_checks=True)(environ)
    return response.status_code, response.content.decode()


def field_error(page: str, role: str) -> str:
    match = re.search(
        rf'id="field-{role}".*?<ul class="errorlist" id="id_{role}_error"><li>(.*?)</li>',
        page,
        re.S,
    )
    assert match, page
    return match.group(1)


def test_sizes_are_rounded_so_the_excess_shows():
    from jobs.studio.uploads import megabytes_over

    assert megabytes_over(300 * MB, 2) == "300"
    assert megabytes_over(int(300.4 * MB), 300) == "300.4"
    assert megabytes_over(7 * MB, 1) == "7"
    assert megabytes_over(int(2.3 * MB), 2) == "2.3"
    assert megabytes_over(int(1.5 * MB), 1) == "1.5"  # not "2"
    # Never the limit itself, however little over it is.
    assert megabytes_over(2 * MB + 1, 2) == "2.1"
    assert megabytes_over(int(2.04 * MB), 2) == "2.1"


# --- refused before the body is read ----------------------------------------------------


def test_a_file_declared_over_the_limit_is_refused_on_its_field_before_it_is_read(
    two_mb, session, temp_dir
):
    body = Body(multipart({"mode": "dialog"}, {"image": ("big.jpg", 300 * MB)}), temp_dir)

    status, page = post("/studio/uploads/image/?mode=dialog", body, session=session)

    assert status == 413
    assert field_error(page, "image") == "This file is 300 MB; the limit is 2 MB."
    assert 'aria-invalid="true"' in page and "Photo</label>" in page
    assert body.read_bytes == 0
    assert list(temp_dir.iterdir()) == []
    assert not Upload.objects.exists()


def test_the_refused_field_is_the_one_of_the_kind_of_job_in_the_upload_address(
    two_mb, session, temp_dir
):
    body = Body(multipart({"mode": "video_dub"}, {"audio": ("big.wav", 30 * MB)}), temp_dir)

    status, page = post("/studio/uploads/audio/?mode=video_dub", body, session=session)

    assert status == 413
    assert "New audio</label>" in page  # "Audio" in a talking photo
    assert field_error(page, "audio") == "This file is 30 MB; the limit is 2 MB."
    # The next file chosen there is sent as a dub's again.
    assert 'hx-post="/studio/uploads/audio/?mode=video_dub"' in page
    assert body.read_bytes == 0


def test_a_whole_form_declared_over_its_limit_is_refused_before_it_is_read(
    two_mb, session, temp_dir
):
    fields = {"csrfmiddlewaretoken": CSRF, "mode": "talking_photo"}
    body = Body(
        multipart(fields, {"image": ("p.jpg", 100), "audio": ("a.mp3", 300 * MB)}), temp_dir
    )

    status, page = post("/studio/jobs/?mode=talking_photo", body, session=session, htmx=False)

    assert status == 413
    errors = page.split('id="new-job-errors"', 1)[1].split("</div>\n", 1)[0]
    assert "The files sent come to 300 MB; the limit is 2 MB a file." in errors
    assert "New talking photo" in page
    assert body.read_bytes == 0
    assert list(temp_dir.iterdir()) == []


def test_pages_that_take_no_file_take_no_more_than_the_fields_limit(session, temp_dir):
    body = Body(multipart({"mode": "dialog"}, {"image": ("p.jpg", 6 * MB)}), temp_dir)

    status, page = post("/studio/quote/", body, session=session, htmx=False)

    assert status == 413
    assert "This request is 6 MB; at most 5 MB can be sent here." in page
    assert "Back to the Studio" in page
    assert body.read_bytes == 0


def test_a_signed_out_visitor_gets_the_plain_refusal(two_mb, temp_dir):
    body = Body(multipart({"mode": "dialog"}, {"image": ("big.jpg", 300 * MB)}), temp_dir)

    status, page = post("/studio/uploads/image/", body, session="", htmx=False)

    assert status == 413
    assert "This file is 300 MB; the limit is 2 MB." in page
    assert body.read_bytes == 0


# --- refused while it streams ------------------------------------------------------------


def test_a_file_passing_the_limit_as_it_streams_is_deleted_at_once_and_told_its_size(
    two_mb, session, temp_dir
):
    size = int(2.3 * MB)  # within what the request may declare: the size is learnt by reading
    body = Body(multipart({"mode": "dialog"}, {"image": ("big.png", size)}), temp_dir)

    status, page = post("/studio/uploads/image/?mode=dialog", body, session=session)

    assert status == 200
    assert field_error(page, "image") == "This file is 2.3 MB; the limit is 2 MB."
    # No more than the limit was ever on disk, and nothing is left.
    assert 0 < body.largest_temp_file <= 2 * MB
    assert list(temp_dir.iterdir()) == []
    assert not Upload.objects.exists()


def test_in_the_whole_form_the_file_over_the_limit_is_named_and_the_rest_is_kept(
    two_mb, session, temp_dir, tmp_path
):
    photo = make_image(tmp_path / "photo.jpg", 640, 480, fmt="jpeg").read_bytes()
    right = make_audio(tmp_path / "right.mp3", 3.0).read_bytes()
    files = {
        "image": ("photo.jpg", photo),
        "left_audio": ("long.mp3", 3 * MB),
        "right_audio": ("right.mp3", right),
    }
    after = {"provider": "joypix", "resolution": "480p", "prompt": "two friends chat", "seed": "7"}
    fields = {"csrfmiddlewaretoken": CSRF, "mode": "dialog"}
    body = Body(multipart(fields, files, after), temp_dir)

    status, page = post("/studio/jobs/?mode=dialog", body, session=session, htmx=False)

    assert status == 400
    assert field_error(page, "left_audio") == "This file is 3 MB; the limit is 2 MB."
    assert body.largest_temp_file <= 2 * MB
    # The good files are kept, and so is everything sent after the big one.
    assert sorted(Upload.objects.values_list("kind", flat=True)) == ["audio", "image"]
    assert 'name="image_upload"' in page and 'name="right_audio_upload"' in page
    assert "two friends chat" in page and 'value="7"' in page
    assert list(temp_dir.iterdir()) == []


# --- unreadable ---------------------------------------------------------------------------


def test_a_file_name_too_long_to_read_is_told_on_its_field(two_mb, session, temp_dir):
    body = Body(multipart({"mode": "dialog"}, {"image": ("a" * 1000 + ".jpg", 1000)}), temp_dir)

    status, page = post("/studio/uploads/image/?mode=dialog", body, session=session)

    assert status == 400
    assert field_error(page, "image") == (
        "This file’s name is too long to read; rename the file and choose it again."
    )
    assert list(temp_dir.iterdir()) == []


def test_in_the_whole_form_a_file_name_too_long_to_read_is_told_above_the_form(
    two_mb, session, temp_dir
):
    fields = {"csrfmiddlewaretoken": CSRF, "mode": "dialog"}
    body = Body(multipart(fields, {"image": ("a" * 1000 + ".jpg", 1000)}), temp_dir)

    status, page = post("/studio/jobs/?mode=dialog", body, session=session, htmx=False)

    assert status == 400
    errors = page.split('id="new-job-errors"', 1)[1].split("</div>\n", 1)[0]
    assert "A file’s name is too long to read; rename it and choose the file again." in errors


# --- a real server --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_real_server_answers_before_the_body_is_sent(
    live_server, client, alice, settings, tmp_path
):
    """Over a socket, as a browser sends it: the answer comes while the body
    is still being sent, long before 300 MB of it."""
    settings.MAX_UPLOAD_MB = 2
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    client.force_login(alice)
    declared = 300 * MB
    host, port = live_server.thread.host, live_server.thread.port
    head = (
        "POST /studio/uploads/image/?mode=dialog HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Cookie: sessionid={client.cookies['sessionid'].value}\r\n"
        "HX-Request: true\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    chunk = b"\0" * (64 * 1024)
    sent = 0
    answer = b""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"\r\n\r\n" not in answer:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                answer += sock.recv(65536)
            elif writable and sent < declared:
                sent += sock.send(chunk[: declared - sent])
        sock.settimeout(5)
        while b"</div>" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert "This file is 300 MB; the limit is 2 MB." in answer.decode(errors="replace")
    # What was sent is what the sockets' buffers took in while the answer came.
    assert sent < 64 * MB
    assert list(tmp_path.iterdir()) == []
