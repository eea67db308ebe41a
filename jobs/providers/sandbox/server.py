"""SandboxServer: a local HTTP server speaking JoyPix's and lipsync.studio's
contracts, fetching inputs by URL and rendering real MP4s.

    with SandboxServer(SandboxConfig(rtf=0.05)) as sandbox:
        sandbox.url                       # http://127.0.0.1:<port>
        sandbox.faults.update({"submit_429": 2})
        sandbox.calls, sandbox.submissions, sandbox.tasks, sandbox.webhooks

Routes (ROUTES, at the end of this module; all but /outputs/ and
/_sandbox/health need `Authorization: Bearer <api_key>`):

    POST /v1/lip-sync/{motion-2-dialog|motion-2}   JoyPix submit (dialog | talking photo)
    GET  /v1/tasks/{task_id}               JoyPix status
    POST /api/v1/{lipsync-video|lipsync-image|lipsync-image-multi}   lipsync.studio submit
    GET  /api/v1/jobs/{id}                 lipsync.studio status
    GET  /outputs/{name}.mp4               rendered video (404 once output_ttl_seconds passed)
    GET  /_sandbox/health                  {"ok": true}
    GET  /_sandbox/faults, POST /_sandbox/faults {...}   read / change faults
    GET  /_sandbox/stats                   submissions, calls, tasks by status, answers
    GET  /_sandbox/submissions             per job (by its inputs' file names): POSTs and tasks

A task's life: "submitted" -> (inputs fetched) "processing" -> (rendered, and
max(min_delay, rtf x seconds) after it started processing) "completed", or
"failed" with a message. With SandboxConfig.clock (clock.py) a task first
waits its queue time "submitted", and its processing takes seconds x rtf of
its resolution x a seeded log-normal factor (or 3x for an outlier).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import contracts as c
from .clock import Draw
from .config import Faults, SandboxConfig
from .render import (
    RenderError,
    RenderStopped,
    decode_audio,
    in_turn,
    load_image,
    render_dub,
    render_photo,
)
from .transport import FetchError, fetch, new_session, post_webhook

log = logging.getLogger("jobs.providers.sandbox")

MAX_REQUEST_BYTES = 1024 * 1024
OUTPUT_NAME = re.compile(r"^[0-9a-f]{32}\.mp4$")
CHUNK = 64 * 1024
AUDIO_ROLES = ("audio", "left_audio", "right_audio")
JOURNAL = "journal.jsonl"
# The routes a provider's client calls, by kind, for the answer counts.
ANSWER_KINDS = (
    (c.JOYPIX_SUBMIT_PREFIX, "submit"),
    (c.LIPSYNC_JOB_PREFIX, "poll"),
    (c.JOYPIX_TASK_PREFIX, "poll"),
    (c.LIPSYNC_SUBMIT_PREFIX, "submit"),
    ("/outputs/", "output"),
)


def submission_key(sub: c.Submission) -> str:
    """Names a submission by its inputs' file names (the last segment of each URL,
    sorted, joined by "+"): the same for every submission of one studio job,
    whatever its signed links' tokens, and different from any other job's."""
    return "+".join(sorted(urlsplit(url).path.rsplit("/", 1)[-1] for _, url in sub.inputs.values()))


def _answer_kind(method: str, path: str) -> str | None:
    for prefix, kind in ANSWER_KINDS:
        if path.startswith(prefix):
            if kind == "submit" and (method != "POST" or path.startswith(c.LIPSYNC_JOB_PREFIX)):
                continue
            return kind
    return None


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int | None  # None: no answer was sent (submit_reset)
    at: float  # time.time() when the answer was sent
    fault: str | None = None
    # The request body as it arrived (b"" when there was none), and whether it
    # came with the right key (None: the route did not ask).
    body: bytes = field(default=b"", repr=False)
    key_ok: bool | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    task_id: str
    status: str  # the job status in the body
    result: int | str  # the receiver's HTTP status, or an error name
    at: float


@dataclass
class Task:
    id: str
    provider: str
    model: str
    inputs: dict[str, tuple[str, str]]  # request field -> (role, URL)
    resolution: str
    prompt: str
    seed: int
    webhook: str
    echo: dict[str, Any]
    output_name: str
    order: str = ""  # a dialog's: SEQUENTIAL plays left, then right; otherwise at once
    status: str = "submitted"
    error: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    duration: float | None = None  # seconds of the output
    execution_ms: int | None = None
    render_seconds: float | None = None
    # Faults drawn for this task when it was created.
    fail: bool = False
    never_finish: bool = False
    forgotten: bool = False
    webhook_never: bool = False
    webhook_twice: bool = False
    webhook_early: bool = False
    key: str = ""  # submission_key of the submission that made it
    # The realistic clock's draw for this task (None: the clock is off).
    draw: Draw | None = None

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Task:
        record = dict(record)
        record["inputs"] = {name: tuple(pair) for name, pair in record["inputs"].items()}
        if record.get("draw") is not None:
            record["draw"] = Draw(**record["draw"])
        return cls(**record)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    sandbox: SandboxServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client resetting an idle kept-alive connection is ordinary; the
        # default prints a traceback to stderr for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s hung up", client_address[0])
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxProvider/1.0"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls
    sys_version = ""
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.answered: int | None = None
        self.fault: str | None = None
        self.body = b""
        self.key_ok: bool | None = None
        self.recorded = False
        self.route_path = urlsplit(self.path).path
        try:
            self.server.sandbox._route(self, self.route_path)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        finally:
            self.record()

    def record(self) -> None:
        """Add this request to sandbox.calls, once; called before the answer's body is
        written, so a client that has its answer also finds it recorded."""
        if not self.recorded:
            self.recorded = True
            self.server.sandbox._record(
                Call(
                    self.command,
                    self.route_path,
                    self.answered,
                    time.time(),
                    self.fault,
                    body=self.body,
                    key_ok=self.key_ok,
                )
            )

    # --- helpers for the routes ---

    def read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.send_bytes(411, b'{"error": "Content-Length required"}')
                self.close_connection = True
                return None
            return b""
        if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
            self.send_bytes(413, b'{"error": "Request body too large"}')
            self.close_connection = True
            return None
        self.body = self.rfile.read(int(length))
        return self.body

    def authorized(self, api_key: str) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        self.key_ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), api_key.encode()
        )
        return self.key_ok

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(data).encode(), headers=headers)

    def send_bytes(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.answered = status
        self.record()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset(self) -> None:
        """Close the connection without an answer (RST, not a clean close)."""
        self.record()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        log.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug("http: " + format, *args)


_GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


class SandboxServer:
    def __init__(
        self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SandboxConfig()
        self.host, self._port = host, port
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._tasks: dict[str, Task] = {}
        self._calls: list[Call] = []
        self._submissions: Counter[str] = Counter()
        # Per submission_key: POSTs received and tasks created. A studio that never
        # sends a job twice has tasks <= 1 for every key.
        self._by_key: dict[str, Counter[str]] = {}
        # Provider answers by kind (submit, poll, output), and those a fault made.
        self._answers: Counter[str] = Counter()
        self._faulted: Counter[str] = Counter()
        self._journal: Any = None  # the open journal file (keep_state)
        self._webhooks: list[WebhookDelivery] = []
        self._drawn = 0  # tasks given a draw of the realistic clock
        self._outputs: dict[str, float] = {}  # name -> expires at (time.time())
        self._threads: set[threading.Thread] = set()  # the tasks at work
        self._idle = threading.Condition(self._lock)  # notified as a task's work ends
        self._render_slots = threading.BoundedSemaphore(max(1, self.config.render_workers))
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._janitor: threading.Thread | None = None
        self._own_dir: str | None = None
        self.root: Path | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        if self.config.storage_dir is None:
            self._own_dir = tempfile.mkdtemp(prefix="lipsync-sandbox-")
            self.root = Path(self._own_dir)
        else:
            self.root = Path(self.config.storage_dir)
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        resume = self._load_journal() if self.config.keep_state else []
        self._remove_leftovers()
        self._stop.clear()
        self._httpd = _HTTPServer((self.host, self._port), _Handler)
        self._httpd.sandbox = self
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )
        self._serve_thread.start()
        self._janitor = threading.Thread(
            target=self._sweep_loop, name="sandbox-janitor", daemon=True
        )
        self._janitor.start()
        for task in resume:
            self._start_task(task)
        log.info("sandbox provider listening on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._httpd is None:
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in [*threads, self._janitor, self._serve_thread]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd = None
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until stop() (from another thread or a signal handler)."""
        while not self._stop.wait(0.5):
            pass

    # --- inspection ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        return (self.config.public_url or self.url).rstrip("/")

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def outputs_dir(self) -> Path:
        assert self.root is not None
        return self.root / "outputs"

    @property
    def work_dir(self) -> Path:
        assert self.root is not None
        return self.root / "work"

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def submissions(self) -> dict[str, int]:
        """POSTs received per submit path (answered or not, authorized or not)."""
        with self._lock:
            return dict(self._submissions)

    @property
    def tasks(self) -> dict[str, Task]:
        with self._lock:
            return dict(self._tasks)

    @property
    def webhooks(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._webhooks)

    @property
    def by_key(self) -> dict[str, dict[str, int]]:
        """{submission_key: {"posts": n, "tasks": n}}."""
        with self._lock:
            return {key: dict(counts) for key, counts in self._by_key.items()}

    @property
    def answers(self) -> dict[str, Any]:
        """Provider answers sent, by kind, and those a fault made, by fault."""
        with self._lock:
            return {"by_kind": dict(self._answers), "faulted": dict(self._faulted)}

    def reset_stats(self) -> None:
        with self._lock:
            self._calls.clear()
            self._submissions.clear()
            self._webhooks.clear()
            self._by_key.clear()
            self._answers.clear()
            self._faulted.clear()

    def output_url(self, task: Task) -> str:
        return f"{self.public_url}/outputs/{task.output_name}"

    def wait_for(
        self,
        task_id: str,
        statuses: tuple[str, ...] = ("completed", "failed"),
        timeout: float = 30.0,
    ) -> Task:
        """Wait (in tests) until a task reaches one of `statuses`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.tasks.get(task_id)
            if task is not None and task.status in statuses:
                return task
            time.sleep(0.02)
        raise TimeoutError(f"task {task_id} did not reach {statuses}")

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait (in tests) until no task is at work: each has completed or failed
        with its webhooks sent, or stopped for good (never_finish). From then on
        nothing changes until the next request."""
        with self._idle:
            if not self._idle.wait_for(lambda: not self._threads, timeout):
                raise TimeoutError(f"{len(self._threads)} sandbox task(s) still at work")

    def _record(self, call: Call) -> None:
        kind = _answer_kind(call.method, call.path)
        with self._lock:
            self._calls.append(call)
            if kind is not None:
                self._count_answer(kind, call.fault)
                self._write({"answer": kind, "fault": call.fault})

    def _count_answer(self, kind: str, fault: str | None) -> None:
        self._answers[kind] += 1
        if fault:
            self._faulted[fault] += 1

    def _count_key(self, key: str, what: str) -> None:
        self._by_key.setdefault(key, Counter())[what] += 1

    # --- the journal (keep_state) ------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        """Append one record to the journal (under self._lock). Flushed at once: a
        SIGKILL of this process loses nothing the kernel has."""
        if self._journal is not None:
            self._journal.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._journal.flush()

    def _load_journal(self) -> list[Task]:
        """Take back the previous run's tasks and counts; return the tasks to go on
        with (those not finished: their inputs are fetched and rendered again)."""
        path = self.root / JOURNAL
        tasks: dict[str, Task] = {}
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                    except ValueError:  # a line cut short by a kill
                        continue
                    if "task" in record:
                        task = Task.from_record(record["task"])
                        tasks[task.id] = task
                    elif "answer" in record:
                        self._count_answer(record["answer"], record.get("fault"))
                    elif "key" in record:
                        self._count_key(record["key"], record["count"])
                        if record["count"] == "posts":
                            self._submissions[record["path"]] += 1
        for task in tasks.values():
            if task.status == "completed" and task.completed_at is not None:
                self._outputs[task.output_name] = task.completed_at + self.config.output_ttl_seconds
        self._tasks.update(tasks)
        self._journal = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        if tasks:
            log.info("took back %d task(s) from %s", len(tasks), path)
        return [t for t in tasks.values() if t.status not in ("completed", "failed")]

    # --- routing -------------------------------------------------------------------------

    def _route(self, h: _Handler, path: str) -> None:
        body = h.read_body()  # always read, so a kept-alive connection stays in step
        if body is None:
            return
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if route.keyed and not h.authorized(self.config.api_key):
                return self._unauthorized(h, c.LIPSYNC)
            handler = route.handlers.get(h.command, route.handlers.get(ANY))
            if handler is None:
                return self._not_allowed(h, route.errors, ", ".join(route.handlers))
            return handler(self, h, body, **match.groupdict())

    # Small handlers the route table names; the larger ones follow below.

    def _health(self, h: _Handler, body: bytes) -> None:
        h.send_json(200, {"ok": True})

    def _submit_joypix(self, h: _Handler, body: bytes, model: str) -> None:
        path = c.JOYPIX_SUBMIT_PREFIX + model
        self._submit(h, path, c.JOYPIX, lambda: c.parse_joypix(body, model))

    def _submit_lipsync(self, h: _Handler, body: bytes, model: str) -> None:
        path = c.LIPSYNC_SUBMIT_PREFIX + model
        self._submit(h, path, c.LIPSYNC, lambda: c.parse_lipsync(model, body))

    def _status_joypix(self, h: _Handler, body: bytes, task_id: str) -> None:
        self._status(h, c.JOYPIX, task_id)

    def _status_lipsync(self, h: _Handler, body: bytes, task_id: str) -> None:
        self._status(h, c.LIPSYNC, task_id)

    def _not_found_joypix(self, h: _Handler, body: bytes) -> None:
        self._error(h, c.JOYPIX, 404, "Not found")

    def _not_found_lipsync(self, h: _Handler, body: bytes) -> None:
        self._error(h, c.LIPSYNC, 404, "Not found")

    def _not_found(self, h: _Handler, body: bytes) -> None:
        self._error(h, None, 404, "Not found")

    def _error(
        self,
        h: _Handler,
        provider: str | None,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """An error answer in the provider's format; plain text for provider None."""
        if provider is not None:
            return h.send_json(status, c.error_answer(provider, status, message), headers)
        return h.send_bytes(
            status, f"{message}\n".encode(), content_type="text/plain", headers=headers
        )

    def _not_allowed(self, h: _Handler, provider: str | None, allow: str) -> None:
        return self._error(h, provider, 405, "Method not allowed", {"Allow": allow})

    def _too_many(self, h: _Handler, provider: str) -> None:
        headers = {"Retry-After": str(self.faults.retry_after)}
        return self._error(h, provider, 429, "Too many requests", headers)

    def _fault(self, h: _Handler, name: str) -> bool:
        """Whether fault `name` applies to this request (one use consumed); if it
        does, the request's Call records it."""
        if not self.faults.take(name):
            return False
        h.fault = name
        return True

    def _unauthorized(self, h: _Handler, provider: str) -> None:
        return self._error(h, provider, 401, "Unauthorized", {"WWW-Authenticate": "Bearer"})

    def _gateway(self, h: _Handler, status: int, title: str) -> None:
        h.send_bytes(
            status, _GATEWAY_PAGE.format(f"{status} {title}").encode(), content_type="text/html"
        )

    def _malformed(
        self, h: _Handler, provider: str, correct: dict[str, Any], no_id: dict[str, Any]
    ) -> None:
        if self.faults.malformed_kind == "no_id":
            return h.send_json(200, no_id)
        text = json.dumps(correct).encode()
        return h.send_bytes(200, text[: len(text) // 2])  # JSON cut in half

    # --- submit ---------------------------------------------------------------------------

    def _submit(self, h: _Handler, path: str, provider: str, parse: Any) -> None:
        try:
            submission: c.Submission | None = parse()
        except c.BadRequest as exc:
            submission, bad = None, exc
        key = submission_key(submission) if submission is not None else ""
        with self._lock:
            self._submissions[path] += 1
            if key:
                self._count_key(key, "posts")
            self._write({"key": key, "count": "posts", "path": path})
        if not h.authorized(self.config.api_key):
            return self._unauthorized(h, provider)
        # Refusals: nothing is created.
        if self._fault(h, "submit_429"):
            return self._too_many(h, provider)
        if self._fault(h, "submit_503"):
            return self._error(h, provider, 503, "Service temporarily unavailable")
        if self._fault(h, "submit_502"):
            return self._gateway(h, 502, "Bad Gateway")
        if submission is None:
            return self._error(h, provider, 400, str(bad))
        task = self._create_task(submission, key)
        answer, no_id = c.submitted(task)
        # The task exists from here on: every fault below leaves the outcome unknown.
        if self._fault(h, "submit_500"):
            return self._error(h, provider, 500, "Internal server error")
        if self._fault(h, "submit_504"):
            return self._gateway(h, 504, "Gateway Timeout")
        if self._fault(h, "submit_reset"):
            return h.reset()
        if self._fault(h, "submit_timeout"):
            if self._stop.wait(self.faults.timeout_seconds):
                return h.reset()
        if self._fault(h, "submit_malformed"):
            return self._malformed(h, provider, answer, no_id)
        return h.send_json(200, answer)

    def _create_task(self, sub: c.Submission, key: str) -> Task:
        faults = self.faults
        task_id = f"task_{secrets.token_hex(12)}" if sub.provider == c.JOYPIX else str(uuid.uuid4())
        has_webhook = bool(sub.webhook)
        task = Task(
            id=task_id,
            provider=sub.provider,
            model=sub.model,
            inputs=sub.inputs,
            resolution=sub.resolution,
            prompt=sub.prompt,
            seed=sub.seed,
            webhook=sub.webhook,
            echo=sub.echo,
            output_name=f"{secrets.token_hex(16)}.mp4",
            order=sub.order,
            fail=faults.take("task_fail"),
            never_finish=faults.take("never_finish"),
            forgotten=faults.take("task_forget"),
            # Webhook faults go to the next task that has a webhook.
            webhook_never=has_webhook and faults.take("webhook_never"),
            webhook_twice=has_webhook and faults.take("webhook_twice"),
            webhook_early=has_webhook and faults.take("webhook_early"),
            key=key,
        )
        with self._lock:
            task.draw = self._clock_draw()
            self._tasks[task_id] = task
            self._count_key(key, "tasks")
            self._write({"key": key, "count": "tasks"})
            self._write({"task": task.as_record()})
        self._start_task(task)
        log.info("%s task %s submitted (%s, %s)", sub.provider, task_id, sub.model, sub.resolution)
        return task

    def _start_task(self, task: Task) -> None:
        thread = threading.Thread(
            target=self._run_task, args=(task,), name=f"sandbox-{task.id[:13]}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    # --- status ----------------------------------------------------------------------------

    def _status(self, h: _Handler, provider: str, task_id: str) -> None:
        if not h.authorized(self.config.api_key):
            return self._unauthorized(h, provider)
        if self._fault(h, "poll_429"):
            return self._too_many(h, provider)
        if self._fault(h, "poll_500"):
            return self._error(h, provider, 500, "Internal server error")
        if self._fault(h, "poll_reset"):
            return h.reset()
        if self._fault(h, "poll_slow") and self._stop.wait(self.faults.slow_poll_seconds):
            return h.reset()
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None and task.provider == provider:
                answer, no_id = c.task_answer(task, self.output_url(task))
        if task is not None and self._fault(h, "poll_404"):
            task = None
        if task is None or task.provider != provider or task.forgotten:
            what = "Task" if provider == c.JOYPIX else "Job"
            return self._error(h, provider, 404, f"{what} not found")
        if self._fault(h, "poll_malformed"):
            return self._malformed(h, provider, answer, no_id)
        return h.send_json(200, answer)

    # --- control (for tests and benchmarks in another process) -----------------------------

    # Their routes ask for the key before anything else (ROUTES: keyed).

    def _faults_show(self, h: _Handler, body: bytes) -> None:
        h.send_json(200, self.faults.as_dict())

    def _faults_change(self, h: _Handler, body: bytes) -> None:
        try:
            values = c.parse_json_object(body) if body else {}
            clear = values.pop("clear", False)
            self.faults.update(values)  # validated first: all or nothing
        except (c.BadRequest, ValueError) as exc:
            return h.send_json(400, {"error": str(exc)})
        if clear:
            self.faults.clear()
            self.faults.update(values)
        log.info("faults changed: %s", ", ".join(sorted(values)) or "cleared")
        h.send_json(200, self.faults.as_dict())

    def _stats(self, h: _Handler, body: bytes) -> None:
        with self._lock:
            by_status = Counter(task.status for task in self._tasks.values())
            stats = {
                "submissions": dict(self._submissions),
                "calls": len(self._calls),
                "tasks": dict(by_status),
                "webhooks": len(self._webhooks),
                "answers": dict(self._answers),
                "faulted": dict(self._faulted),
            }
        h.send_json(200, stats)

    def _submissions_show(self, h: _Handler, body: bytes) -> None:
        h.send_json(200, self.by_key)

    # --- outputs ---------------------------------------------------------------------------

    def _serve_output(self, h: _Handler, body: bytes, name: str) -> None:
        path = self.outputs_dir / name
        with self._lock:
            expires = self._outputs.get(name) if OUTPUT_NAME.match(name) else None
            if expires is not None and expires <= time.time():
                self._delete_output(name)
                expires = None
        try:
            if expires is None:
                raise FileNotFoundError(name)
            handle = open(path, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return h.send_bytes(404, b"Not found\n", content_type="text/plain")
        slow = h.command != "HEAD" and self._fault(h, "output_slow")
        with handle:
            size = path.stat().st_size
            h.send_response(200)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(size))
            h.send_header("Cache-Control", "private, max-age=0")
            h.answered = 200
            h.record()
            h.end_headers()
            if h.command == "HEAD":
                return
            if slow:
                # Ten pieces, evenly over slow_output_seconds.
                piece = max(1, -(-size // 10))
                pause = self.config.faults.slow_output_seconds / 10
                while chunk := handle.read(piece):
                    h.wfile.write(chunk)
                    h.wfile.flush()
                    time.sleep(pause)
                return
            shutil.copyfileobj(handle, h.wfile, CHUNK)

    def _delete_output(self, name: str) -> None:
        with self._lock:
            self._outputs.pop(name, None)
        (self.outputs_dir / name).unlink(missing_ok=True)

    def expire_outputs(self) -> int:
        """Delete outputs past their TTL; returns how many."""
        now = time.time()
        with self._lock:
            expired = [name for name, at in self._outputs.items() if at <= now]
            for name in expired:
                self._delete_output(name)
        if expired:
            log.info("deleted %d expired output(s)", len(expired))
        return len(expired)

    def _sweep_loop(self) -> None:
        interval = min(30.0, max(0.2, self.config.output_ttl_seconds / 4))
        while not self._stop.wait(interval):
            self.expire_outputs()

    def _remove_leftovers(self) -> None:
        """Outputs and work files of an earlier run are unreachable (tasks live in
        memory): remove the ones this server made, nothing else."""
        for path in self.outputs_dir.glob("*.mp4"):
            if OUTPUT_NAME.match(path.name) and path.name not in self._outputs:
                path.unlink(missing_ok=True)
        for path in self.work_dir.iterdir():
            if path.is_dir() and re.match(r"^(task_[0-9a-f]{24}|[0-9a-f-]{36})$", path.name):
                shutil.rmtree(path, ignore_errors=True)

    # --- the pipeline ---------------------------------------------------------------------

    def _update(self, task: Task, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(task, name, value)

    def _run_task(self, task: Task) -> None:
        workdir = self.work_dir / task.id
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            queued = self._queue_wait(task)
            if queued and self._stop.wait(max(0.0, task.created_at + queued - time.time())):
                return
            paths = self._fetch_inputs(task, workdir)
            started = time.time()
            self._update(task, status="processing", started_at=started)
            log.info("task %s processing", task.id)
            if task.webhook_early:
                self._send_webhook(task, status="completed")
            self._render(task, paths, workdir, started)
        except (FetchError, RenderError) as exc:
            self._fail(task, str(exc))
        except RenderStopped:
            pass
        except Exception:
            log.exception("task %s: internal error", task.id)
            self._fail(task, "Internal error while generating the video")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            with self._lock:
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _fetch_inputs(self, task: Task, workdir: Path) -> dict[str, tuple[str, Path]]:
        paths: dict[str, tuple[str, Path]] = {}
        with new_session() as session:
            for name, (role, url) in task.inputs.items():
                dest = workdir / f"input-{role}"
                fetch(
                    session,
                    url,
                    dest,
                    label=name,
                    max_bytes=self.config.max_input_bytes,
                    timeout=self.config.fetch_timeout,
                )
                paths[role] = (name, dest)
        return paths

    def _render(
        self, task: Task, paths: dict[str, tuple[str, Path]], workdir: Path, started: float
    ) -> None:
        cfg = self.config
        out = workdir / "output.mp4"
        self._acquire_render_slot()
        try:
            t0 = time.perf_counter()
            audios = [
                decode_audio(
                    paths[role][1], max_seconds=cfg.max_media_seconds, label=paths[role][0]
                )
                for role in AUDIO_ROLES
                if role in paths
            ]
            if task.order == c.SEQUENTIAL and len(audios) == 2:
                audios = list(in_turn(*audios))  # the output lasts as long as both
            seconds = max(len(a) for a in audios) / 44100
            self._update(task, duration=seconds)
            if "mask" in paths:
                load_image(paths["mask"][1], label=paths["mask"][0])
            if task.never_finish:
                log.info("task %s will never finish (fault)", task.id)
                return
            if not task.fail:
                if "video" in paths:
                    name, video = paths["video"]
                    render_dub(
                        out,
                        video,
                        audios[0],
                        resolution=task.resolution,
                        fps=cfg.fps,
                        label=name,
                        stop=self._stop,
                    )
                else:
                    name, image_path = paths["image"]
                    image = load_image(image_path, label=name)
                    render_photo(
                        out, image, audios, resolution=task.resolution, fps=cfg.fps, stop=self._stop
                    )
                self._update(task, render_seconds=time.perf_counter() - t0)
        finally:
            self._render_slots.release()
        if task.never_finish:
            return
        delay = self._processing_time(task, seconds)
        if self._stop.wait(max(0.0, started + delay - time.time())):
            raise RenderStopped
        if task.fail:
            raise RenderError(self.faults.fail_message)
        out.replace(self.outputs_dir / task.output_name)
        now = time.time()
        with self._lock:
            self._outputs[task.output_name] = now + cfg.output_ttl_seconds
            task.status, task.completed_at = "completed", now
            task.execution_ms = int((now - started) * 1000)
            self._write({"task": task.as_record()})
        log.info(
            "task %s completed (%.1f s of video, rendered in %.2f s)",
            task.id,
            seconds,
            task.render_seconds or 0,
        )
        self._final_webhook(task)

    # --- the clock (clock.py) --------------------------------------------------------------

    def _clock_draw(self) -> Draw | None:
        """The next task's times, by its number in the order of submission
        (called under the lock)."""
        clock = self.config.clock
        if clock is None:
            return None
        self._drawn += 1
        return clock.draw(self._drawn - 1)

    def _queue_wait(self, task: Task) -> float:
        """Seconds after submission that the task stays "submitted"."""
        return self.config.start_delay + (task.draw.queue_wait if task.draw else 0.0)

    def _processing_time(self, task: Task, seconds: float) -> float:
        """Seconds from "processing" to "completed" for `seconds` of video."""
        cfg = self.config
        if task.draw is None or cfg.clock is None:
            return max(cfg.min_delay, cfg.rtf * seconds)
        rtf = cfg.clock.rtf(task.resolution, cfg.rtf)
        return max(cfg.min_delay, task.draw.processing(seconds=seconds, rtf=rtf))

    def _acquire_render_slot(self) -> None:
        while not self._render_slots.acquire(timeout=0.2):
            if self._stop.is_set():
                raise RenderStopped

    def _fail(self, task: Task, message: str) -> None:
        with self._lock:
            task.status, task.error, task.completed_at = "failed", message, time.time()
            self._write({"task": task.as_record()})
        log.info("task %s failed: %s", task.id, message)
        self._final_webhook(task)

    # --- webhooks (lipsync.studio) ----------------------------------------------------------

    def _final_webhook(self, task: Task) -> None:
        if not task.webhook or task.webhook_never:
            return
        for _ in range(2 if task.webhook_twice else 1):
            self._send_webhook(task)

    def _send_webhook(self, task: Task, *, status: str | None = None) -> None:
        with self._lock:
            body_data = c.lipsync_job(task, self.output_url(task), status=status)
        body = json.dumps(body_data).encode()
        result: int | str = "not sent"
        for attempt in range(max(1, self.config.webhook_attempts)):
            if attempt and self._stop.wait(self.config.webhook_retry_delay):
                break
            result = post_webhook(task.webhook, body, timeout=self.config.webhook_timeout)
            if isinstance(result, int) and result < 500 and result != 429:
                break
        with self._lock:
            self._webhooks.append(
                WebhookDelivery(task.id, body_data["status"], result, time.time())
            )


# --- the route table ------------------------------------------------------------------------

ANY = "*"  # the key of a route's handler for every method it does not list


@dataclass(frozen=True)
class Route:
    """A path pattern (its named groups are the handler's arguments) and a handler
    per method. A method without one is answered 405, with an Allow header, in the
    `errors` provider's format (None: plain text). A keyed route asks for the key
    before it looks at the method; the providers' routes do it in their handlers,
    after the method, as the providers do."""

    pattern: re.Pattern[str]
    handlers: dict[str, Callable[..., None]]
    errors: str | None = None
    keyed: bool = False


def _route(pattern: str, handlers: dict[str, Callable[..., None]], **options: Any) -> Route:
    return Route(re.compile(pattern, re.DOTALL), handlers, **options)


_MODELS = "|".join(re.escape(model) for model in c.LIPSYNC_MODELS)
_JOYPIX_MODELS = "|".join(re.escape(model) for model in c.JOYPIX_MODELS)

# The first route whose pattern matches the whole path answers.
ROUTES: tuple[Route, ...] = (
    _route("/_sandbox/health", {ANY: SandboxServer._health}),
    _route(
        "/_sandbox/faults",
        {"GET": SandboxServer._faults_show, "POST": SandboxServer._faults_change},
        errors=c.LIPSYNC,
        keyed=True,
    ),
    _route(
        "/_sandbox/stats",
        {"GET": SandboxServer._stats, ANY: SandboxServer._not_found_lipsync},
        keyed=True,
    ),
    _route(
        "/_sandbox/submissions",
        {"GET": SandboxServer._submissions_show, ANY: SandboxServer._not_found_lipsync},
        keyed=True,
    ),
    _route("/_sandbox/.*", {ANY: SandboxServer._not_found_lipsync}, keyed=True),
    _route(
        "/outputs/(?P<name>.*)",
        {"GET": SandboxServer._serve_output, "HEAD": SandboxServer._serve_output},
    ),
    _route(
        re.escape(c.JOYPIX_SUBMIT_PREFIX) + f"(?P<model>{_JOYPIX_MODELS})",
        {"POST": SandboxServer._submit_joypix},
        errors=c.JOYPIX,
    ),
    _route(
        re.escape(c.JOYPIX_TASK_PREFIX) + "(?P<task_id>.*)",
        {"GET": SandboxServer._status_joypix},
        errors=c.JOYPIX,
    ),
    _route(
        re.escape(c.LIPSYNC_JOB_PREFIX) + "(?P<task_id>.*)",
        {"GET": SandboxServer._status_lipsync},
        errors=c.LIPSYNC,
    ),
    _route(
        re.escape(c.LIPSYNC_SUBMIT_PREFIX) + f"(?P<model>{_MODELS})",
        {"POST": SandboxServer._submit_lipsync},
        errors=c.LIPSYNC,
    ),
    _route("/v1/.*", {ANY: SandboxServer._not_found_joypix}),
    _route("/api/.*", {ANY: SandboxServer._not_found_lipsync}),
    _route(".*", {ANY: SandboxServer._not_found}),
)
