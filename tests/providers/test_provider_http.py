"""The provider HTTP client over real local HTTP: every failure is a real
socket event (refused port, unresolvable name, full accept queue, a server
that sleeps, closes or resets), and the scripted server counts what arrived."""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from jobs.providers.http import (
    USER_AGENT,
    ProviderBusy,
    ProviderError,
    ProviderHttp,
    ProviderMalformed,
    ProviderOutcomeUnknown,
    ProviderRefused,
    ProviderRejected,
    ProviderUnavailable,
    parse_retry_after,
)

KEY = "sk_TEST1234_s3cr3tValue9876"

# --- A scripted HTTP/1.1 server ------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # dict/list -> JSON, str/bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to sit on the request before answering


@dataclass
class Close:
    """Read the request, then close the connection without a word."""


@dataclass
class Reset:
    """Read the request, then abort the connection (TCP RST)."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int

    def json(self) -> Any:
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up early (oversized answer, read timeout) is the
        # point of several tests, not a server fault.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class ScriptedServer:
    """Plays queued actions in order, one per request, and records every request."""

    def __init__(self) -> None:
        self.actions: deque[Reply | Close | Reset] = deque()
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real providers do

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                script._handle(self)

            do_POST = do_GET

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def push(self, *actions: Reply | Close | Reset) -> ScriptedServer:
        self.actions.extend(actions)
        return self

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.seen.append(
            Seen(h.command, h.path, dict(h.headers.items()), body, h.client_address[1])
        )
        action = self.actions.popleft() if self.actions else Reply(418, "unscripted request")
        if isinstance(action, Close):
            h.close_connection = True
            return
        if isinstance(action, Reset):
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        if action.delay and self.stopping.wait(action.delay):
            return
        payload = action.body
        content_type = "application/json"
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        elif isinstance(payload, str):
            payload = payload.encode()
            content_type = "text/plain; charset=utf-8"
        try:
            h.send_response(action.status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(payload)))
            for name, value in action.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            h.close_connection = True  # the client gave up first (read timeout)


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def refused_url() -> str:
    """A port nothing listens on: connection refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def blackhole_url():
    """A listener whose accept queue is full, so new SYNs are dropped: the
    connect times out (a real ConnectTimeout, no route tricks needed)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    for s in fillers:
        s.close()
    listener.close()


DNS_FAILS_URL = "http://nonexistent.invalid"  # .invalid never resolves (RFC 2606)


def client(url: str, **kwargs: Any) -> ProviderHttp:
    kwargs = {"connect_timeout": 0.5, "read_timeout": 0.5, "get_backoff": 0.01} | kwargs
    return ProviderHttp(url, KEY, **kwargs)


BODY = {"image_url": "https://studio.example/i/1.png", "seed": -1}


# --- submit: success -----------------------------------------------------------------


def test_submit_posts_the_json_once_with_the_key_and_user_agent(server):
    server.push(Reply(200, {"id": "job-1"}))
    with client(server.url) as http:
        assert http.submit("/v1/things", BODY) == {"id": "job-1"}
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/things")
    assert seen.json() == BODY
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"] == USER_AGENT


def test_a_base_url_with_a_path_prefix_and_trailing_slash_is_joined_once(server):
    server.push(Reply(200, {}))
    client(server.url + "/prefix/").submit("/v1/x", {})
    assert server.seen[0].path == "/prefix/v1/x"


# --- submit: refused (safe to send again) ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (429, {}, None),
        (502, {}, None),
        (503, {"Retry-After": "12"}, 12.0),
        (408, {}, None),
    ],
)
def test_submit_refused_statuses_are_safe_to_retry(server, status, headers, retry_after):
    server.push(Reply(status, {"message": "slow down"}, headers))
    with pytest.raises(ProviderRefused) as caught:
        client(server.url).submit("/v1/x", BODY)
    assert caught.value.retry_after == retry_after
    assert f"HTTP {status}" in str(caught.value)
    assert len(server.seen) == 1


def test_submit_429_with_an_http_date_retry_after(server):
    when = datetime.now(UTC) + timedelta(seconds=90)
    server.push(Reply(429, {}, {"Retry-After": format_datetime(when, usegmt=True)}))
    with pytest.raises(ProviderRefused) as caught:
        client(server.url).submit("/v1/x", BODY)
    assert 85 <= caught.value.retry_after <= 90
    assert len(server.seen) == 1


def test_submit_connection_refused_is_refused(refused_url):
    with pytest.raises(ProviderRefused, match="could not connect"):
        client(refused_url).submit("/v1/x", BODY)


def test_submit_dns_failure_is_refused():
    with pytest.raises(ProviderRefused, match="could not be resolved"):
        client(DNS_FAILS_URL).submit("/v1/x", BODY)


def test_submit_connect_timeout_is_refused(blackhole_url):
    started = time.monotonic()
    with pytest.raises(ProviderRefused, match="did not accept a connection within 0.3 s"):
        client(blackhole_url, connect_timeout=0.3).submit("/v1/x", BODY)
    assert time.monotonic() - started < 3


# --- submit: outcome unknown (never sent again) -----------------------------------------


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (Reply(500, {"message": "boom"}), "HTTP 500"),
        (Reply(504, "gateway timeout"), "HTTP 504"),
        (Reply(200, "<html>not json</html>"), "could not be read"),
        (Reply(200, ["a", "list"]), "could not be read"),
        (Reply(201, b"\xff\xfe garbage"), "could not be read"),
        (Reply(302, {}, {"Location": "/elsewhere"}), "unexpected status (302)"),
        (Reply(200, {"pad": "x" * 2_000_000}), "could not be read"),  # over the 1 MiB cap
    ],
)
def test_submit_answers_that_leave_the_outcome_unknown(server, reply, needle):
    server.push(reply, Reply(200, {"id": "second"}))
    with pytest.raises(ProviderOutcomeUnknown, match=re.escape(needle)) as caught:
        client(server.url).submit("/v1/x", BODY)
    assert "may or may not have been created, so it was not sent again" in str(caught.value)
    assert len(server.seen) == 1  # not retried, and a redirect not followed


def test_submit_read_timeout_is_unknown_and_not_resent(server):
    server.push(Reply(200, {"id": "late"}, delay=2))
    started = time.monotonic()
    with pytest.raises(ProviderOutcomeUnknown) as caught:
        client(server.url, read_timeout=0.3).submit("/v1/x", BODY)
    assert time.monotonic() - started < 1.5
    assert str(caught.value) == (
        "The provider did not answer within 0.3 s; the job may or may not have been "
        "created, so it was not sent again."
    )
    assert len(server.seen) == 1


@pytest.mark.parametrize("action", [Close(), Reset()], ids=["closed", "reset"])
def test_submit_connection_broken_after_sending_is_unknown(server, action):
    server.push(action, Reply(200, {"id": "second"}))
    with pytest.raises(ProviderOutcomeUnknown, match="connection to the provider broke"):
        client(server.url).submit("/v1/x", BODY)
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "action", [Reply(500, {}), Reset(), Close()], ids=["500", "reset", "closed"]
)
def test_submit_is_sent_once_even_on_a_session_mounted_with_retries(server, action):
    session = requests.Session()
    eager = Retry(
        total=5,
        connect=5,
        read=5,
        status=5,
        allowed_methods=None,
        status_forcelist=[500],
        backoff_factor=0,
    )
    session.mount("http://", HTTPAdapter(max_retries=eager))
    server.push(action, Reply(200, {"id": "dup"}), Reply(200, {"id": "dup"}))
    with pytest.raises(ProviderOutcomeUnknown):
        client(server.url, session=session).submit("/v1/x", BODY)
    assert len(server.seen) == 1


# --- submit: rejected ---------------------------------------------------------------


def test_submit_400_envelope_is_rejected_with_the_providers_message(server):
    server.push(Reply(400, {"code": 400, "message": "image_url could not be downloaded"}))
    with pytest.raises(ProviderRejected) as caught:
        client(server.url).submit("/v1/x", BODY)
    assert str(caught.value) == "image_url could not be downloaded"
    assert caught.value.status == 400
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(401, b""), "HTTP 401 Unauthorized"),
        (Reply(422, {"error": {"message": "audio too long"}}), "audio too long"),
        (Reply(403, "Your plan has no API credits left"), "Your plan has no API credits left"),
        (Reply(404, "<html>" + "x" * 400 + "</html>"), "HTTP 404 Not Found"),
    ],
)
def test_submit_other_client_errors_are_rejected(server, reply, message):
    server.push(reply)
    with pytest.raises(ProviderRejected) as caught:
        client(server.url).submit("/v1/x", BODY)
    assert str(caught.value) == message
    assert len(server.seen) == 1


# --- get (polling) -----------------------------------------------------------------------


def test_get_reuses_one_connection_for_many_polls(server):
    server.push(*[Reply(200, {"n": n}) for n in range(5)])
    with client(server.url) as http:
        assert [http.get("/v1/tasks/t1")["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert {s.client_port for s in server.seen} == {server.seen[0].client_port}
    assert all(
        s.method == "GET" and s.headers["Authorization"] == f"Bearer {KEY}" for s in server.seen
    )


def test_get_retries_502_503_and_a_reset_then_succeeds(server):
    server.push(Reply(502), Reset(), Reply(503), Reply(200, {"status": "ok"}))
    assert client(server.url, get_attempts=4).get("/v1/tasks/t1") == {"status": "ok"}
    assert len(server.seen) == 4


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_5xx_after_retries_is_unavailable(server, status):
    server.push(*[Reply(status)] * 3, Reply(200, {}))
    with pytest.raises(ProviderUnavailable) as caught:
        client(server.url).get("/v1/tasks/t1")
    assert not isinstance(caught.value, ProviderBusy)
    assert len(server.seen) == 3


def test_get_a_long_retry_after_is_left_to_the_caller(server):
    server.push(Reply(503, {}, {"Retry-After": "120"}), Reply(200, {}))
    with pytest.raises(ProviderUnavailable) as caught:
        client(server.url).get("/v1/tasks/t1")
    assert caught.value.retry_after == 120
    assert len(server.seen) == 1


def test_get_429_is_busy_at_once(server):
    server.push(Reply(429, {}, {"Retry-After": "30"}), Reply(200, {}))
    with pytest.raises(ProviderBusy) as caught:
        client(server.url).get("/v1/tasks/t1")
    assert caught.value.retry_after == 30
    assert len(server.seen) == 1


@pytest.mark.parametrize("body", ["not json", ["a", "list"]])
def test_get_malformed_json(server, body):
    server.push(Reply(200, body), Reply(200, {}))
    with pytest.raises(ProviderMalformed):
        client(server.url).get("/v1/tasks/t1")
    assert len(server.seen) == 1


def test_get_404_is_rejected_with_its_status(server):
    server.push(Reply(404, {"message": "task not found"}))
    with pytest.raises(ProviderRejected) as caught:
        client(server.url).get("/v1/tasks/t1")
    assert (str(caught.value), caught.value.status) == ("task not found", 404)


def test_get_read_timeout_is_unavailable_and_not_repeated(server):
    server.push(Reply(200, {}, delay=2), Reply(200, {}))
    with pytest.raises(ProviderUnavailable, match="did not answer within 0.3 s"):
        client(server.url, read_timeout=0.3).get("/v1/tasks/t1")
    assert len(server.seen) == 1


@pytest.mark.parametrize("fixture", ["refused_url", "blackhole_url"])
def test_get_unreachable_provider_is_unavailable(request, fixture):
    url = request.getfixturevalue(fixture)
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        client(url, connect_timeout=0.2).get("/v1/tasks/t1")


def test_get_dns_failure_is_unavailable():
    with pytest.raises(ProviderUnavailable):
        client(DNS_FAILS_URL).get("/v1/tasks/t1")


# --- the key stays secret -----------------------------------------------------------------


def _texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def test_the_key_never_appears_in_logs_reprs_or_errors(server, refused_url, blackhole_url, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3's own debug lines too
    texts: list[str] = []
    server.push(
        Reply(429),
        Reply(500),
        Reply(400, {"message": f"invalid key {KEY}"}),
        Close(),
        Reset(),
        Reply(200, "nope"),
        Reply(200, {}, delay=2),
        Reply(404, f"no task for {KEY}"),
        Reply(503),
        Reply(503),
        Reply(503),
    )
    http = client(server.url, read_timeout=0.3)
    calls = [lambda: http.submit("/v1/x", BODY)] * 7 + [lambda: http.get("/v1/t")] * 2
    calls += [
        lambda: client(refused_url).submit("/v1/x", BODY),
        lambda: client(DNS_FAILS_URL).submit("/v1/x", BODY),
        lambda: client(blackhole_url, connect_timeout=0.2).submit("/v1/x", BODY),
        lambda: client(refused_url).get("/v1/t"),
    ]
    for call in calls:
        with pytest.raises(ProviderError) as caught:
            call()
        texts += _texts(caught.value)
    texts += [repr(http), str(http.session.headers), caplog.text]
    assert caplog.records, "the client logs its failures"
    for text in texts:
        assert KEY not in text
    # A provider that echoes the key gets it blacked out.
    assert any("invalid key [redacted]" in t for t in texts)


def test_a_bad_key_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as caught:
        ProviderHttp("https://p.example", KEY + "\r\nX-Evil: 1")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://p.example", "p.example", "https://u:pw@p.example"])
def test_a_bad_base_url_is_refused(url):
    with pytest.raises(ValueError):
        ProviderHttp(url, KEY)


def test_a_shared_session_never_carries_the_key(server):
    session = requests.Session()
    server.push(Reply(200, {}))
    client(server.url, session=session).get("/v1/t")
    assert "Authorization" not in session.headers


# --- Retry-After ---------------------------------------------------------------------------


NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("Wed, 01 Jan 2025 12:01:30 GMT", 90.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),  # in the past: go now
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_the_environments_proxy_is_read_once_when_the_client_is_made(monkeypatch):
    """A proxy set in the environment (HTTP_PROXY / NO_PROXY) is used, as
    requests would; it is read when the client is made, not on every request
    (that re-reading was a third of a status request's cost in the poll loop)."""
    seen = []

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self):  # a forward proxy gets the absolute URL
            seen.append(self.path)
            body = b'{"state": "processing"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.server_port}")
        http = client("http://provider.example")  # resolvable only through the proxy
        monkeypatch.setenv("NO_PROXY", "*")  # read once: a later change is not seen
        monkeypatch.setenv("no_proxy", "*")
        assert http.get("/status/1") == {"state": "processing"}
        assert seen == ["http://provider.example/status/1"]
        http.close()
    finally:
        server.shutdown()
        server.server_close()
