"""The chaos run: the whole studio as separate processes (web server, sandbox
provider with faults at a rate, two cluster nodes), jobs of every kind made
through the web form and the REST API, and processes SIGKILLed at random
moments and started again; then, once everything is quiet, the invariants.

    .venv/bin/python bench/chaos.py --short                 # CI's form: 16 jobs, 4 kills
    .venv/bin/python bench/chaos.py                         # 1,000 jobs, >= 50 kills
    .venv/bin/python bench/chaos.py \\
        --database-url postgres://postgres@127.0.0.1:5432/lipsync_chaos_run \\
        --redis-url redis://127.0.0.1:6379/14               # on PostgreSQL + Redis

What runs (bench/processes.py starts them, as `manage.py runstudio` does):

- `manage.py sandbox --keep-state --fault-rate R --fault-seed S`: every
  submit and status request meets one of its faults (429, 500, 502, 503,
  dropped connection, slow answer, 404 "not found") with chance R, an output
  download is slow with chance R, and R/4 of the tasks fail, are forgotten, or
  lose or double their webhook. It keeps its tasks and counts in a journal, so
  a SIGKILLed sandbox goes on with them when started again (a real provider
  does not forget its tasks when one of its machines dies);
- gunicorn (the web), and two `manage.py qcluster` nodes, on SQLite + the ORM
  broker, or on PostgreSQL + Redis with --database-url/--redis-url;
- in this process: Django on the same database (to set up members, credits
  and API keys, and to check the outcome), a loopback file server for API
  inputs given by URL, a loopback webhook receiver, --clients client threads
  and the chaos thread.

Jobs (seeded): about half through the web form (a signed-in requests session,
CSRF token, the files posted with the form, as without JavaScript) and half
through the REST API (a Bearer key; lipsync.studio's contract with inputs by
URL or multipart, JoyPix's by URL; half of the lipsync.studio ones with a
`webhook` to the receiver). Kinds and providers: dialog (JoyPix;
lipsync.studio taking turns or at once), talking photo (both), video dub.
A client whose request got no answer (a killed web server) sends it again with
the same form token or Idempotency-Key, as a browser or a careful script would.

Kills (seeded times and kinds, spread over the run while jobs are live): a
cluster worker (one process of a node; django-q starts another), a whole
node, the web server, the sandbox; each but the worker is started again after
a short pause. At each kill the run notes what was in flight (jobs
submitting, processing, archiving; webhooks pending), so the report says
which phases the kills hit.

Then it waits until no job is live and no webhook is pending, and checks:
every job terminal; no job submitted to the provider more than once (the
sandbox's per-job task counts, GET /_sandbox/submissions, matched to each
job by its inputs' names); no form or request made two jobs; every completed
job's video is in storage; every hold resolved (captured or released);
`manage.py check_ledger` clean; every webhook owed delivered (the receiver
counts by webhook-id). It prints the figures and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import random
import re
import secrets
import shlex
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # jobs, lipsync_site, bench and tests.media_factory

from bench.django_env import django_start  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.processes import MANAGE, PYTHON, Studio, descendants, studio_env  # noqa: E402

SHORT = {"jobs": 16, "kills": 4, "clients": 3}
LONG = {"jobs": 1000, "kills": 60, "clients": 4}
PASSWORD = "chaos-Password-1"  # noqa: S105 (loopback-only throwaway members)
KILL_KINDS = ("worker", "node", "web", "sandbox")
KILL_WEIGHTS = (0.35, 0.25, 0.2, 0.2)

# The pipeline's clocks, shortened so that what a kill leaves behind (a job stuck
# "submitting", a lease held by a dead node, a forgotten task) is settled within
# the run rather than in minutes; each still keeps its meaning.
PIPELINE_ENV = {
    "POLL_LOOP_SECONDS": "10",
    "PROVIDER_CONNECT_TIMEOUT": "2",
    "PROVIDER_READ_TIMEOUT": "8",
    "JOB_SUBMITTING_STUCK_SECONDS": "25",
    "JOB_NOT_FOUND_POLLS": "3",
    "JOB_NOT_FOUND_SECONDS": "8",
    "JOB_ARCHIVE_LEASE_SECONDS": "12",
    "JOB_PROCESSING_TIMEOUT_SECONDS": "150",
    "Q_TIMEOUT": "60",
    "Q_RETRY": "90",
    "WEBHOOKS_ALLOW_HTTP": "1",
    "FETCH_ALLOW_LOOPBACK": "1",
    "API_RATE_LIMIT_PER_MINUTE": "100000",
    "API_KEY_MAX_IN_FLIGHT": "100000",
}


# --- arguments -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help=f"CI's form: {SHORT}")
    parser.add_argument("--jobs", type=int, help=f"jobs to make (long form: {LONG['jobs']})")
    parser.add_argument("--kills", type=int, help=f"SIGKILLs (long form: {LONG['kills']})")
    parser.add_argument("--clients", type=int, help="client threads making jobs")
    parser.add_argument("--fault-rate", type=float, default=0.25, help="sandbox fault rate")
    parser.add_argument("--seed", type=int, default=1, help="seeds jobs, kills and faults")
    parser.add_argument("--rtf", type=float, default=0.05, help="sandbox real-time factor")
    parser.add_argument("--workers", type=int, default=2, help="workers per cluster node")
    parser.add_argument("--database-url", help="PostgreSQL: a database this run creates and drops")
    parser.add_argument("--redis-url", help="Redis as broker and cache (keys are prefixed)")
    parser.add_argument(
        "--settle-timeout", type=float, help="seconds to wait for quiet after the storm"
    )
    parser.add_argument("--keep", action="store_true", help="keep DATA_DIR and the database")
    args = parser.parse_args(argv)
    form = SHORT if args.short else LONG
    for name, value in form.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.settle_timeout is None:
        args.settle_timeout = 150.0 if args.short else 900.0
    if not 0 <= args.fault_rate <= 1:
        parser.error("--fault-rate must be between 0 and 1")
    return args


def reproduce_command(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "bench/chaos.py", *argv])


# --- PostgreSQL: a database made for the run -------------------------------------------------


def _pg_admin(url: str):
    import psycopg

    parts = urlsplit(url)
    conn = psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        dbname="postgres",
        autocommit=True,
    )
    return conn, unquote(parts.path.strip("/"))


def pg_create(url: str) -> None:
    from psycopg import sql

    conn, name = _pg_admin(url)
    with conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def pg_drop(url: str) -> None:
    from psycopg import sql

    conn, name = _pg_admin(url)
    with conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def redis_forget(url: str, prefix: str) -> None:
    """Remove the run's keys (broker queue, cache) from Redis."""
    import redis

    client = redis.Redis.from_url(url)
    for pattern in (f"*{prefix}*",):
        for key in client.scan_iter(match=pattern, count=500):
            client.delete(key)


# --- loopback servers: input files for the API, the webhook receiver -------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Receiver(BaseHTTPRequestHandler):
    """Answers 200 to every POST and counts it by its webhook-id."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received[self.headers.get("webhook-id", "")] += 1
            try:
                self.server.bodies.append(json.loads(body))
            except ValueError:
                pass
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def serve(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    ).start()
    return server


def make_media(root: Path) -> dict[str, Path]:
    """Small real inputs: a photo, a mask, three clips of speech-length audio, a video."""
    from tests.media_factory import make_audio, make_image, make_video

    root.mkdir(parents=True, exist_ok=True)
    return {
        "photo": make_image(root / "photo.png", 320, 400, fmt="png"),
        "mask": make_image(root / "mask.png", 320, 180, fmt="png"),
        "a1": make_audio(root / "a1.wav", 1.0, fmt="wav", tone_hz=220),
        "a2": make_audio(root / "a2.mp3", 1.5, fmt="mp3", tone_hz=330),
        "a3": make_audio(root / "a3.wav", 2.0, fmt="wav", tone_hz=440),
        "video": make_video(root / "clip.mp4", 1.0, 320, 180, fps=10),
    }


# --- what to make ----------------------------------------------------------------------------


@dataclass
class Spec:
    """One job a client asks for, and what became of the asking."""

    index: int
    channel: str  # "web" or "api"
    mode: str
    provider: str
    order: str = ""  # a lipsync.studio dialog's
    files: dict[str, str] = field(default_factory=dict)  # role -> media name
    api_inputs: str = ""  # "url" or "multipart"
    webhook: bool = False
    prompt: str = ""
    # Outcome of the asking.
    answer: str = ""  # "accepted", "refused: ...", "gave up: ..."
    tries: int = 0
    job_id: int | None = None


# (mode, provider, order, files)
DIALOG_1 = {"image": "photo", "left_audio": "a1", "right_audio": "a2"}
DIALOG_2 = {"image": "photo", "left_audio": "a2", "right_audio": "a3"}
KINDS = [
    ("dialog", "joypix", "", DIALOG_1),
    ("dialog", "lipsync_studio", "sequential", DIALOG_1),
    ("dialog", "lipsync_studio", "meanwhile", DIALOG_2),
    ("talking_photo", "lipsync_studio", "", {"image": "photo", "audio": "a2"}),
    ("talking_photo", "joypix", "", {"image": "photo", "audio": "a3"}),
    ("video_dub", "lipsync_studio", "", {"video": "video", "audio": "a1"}),
    ("video_dub", "lipsync_studio", "", {"video": "video", "audio": "a2", "mask": "mask"}),
]  # fmt: skip


def make_specs(count: int, rng: random.Random, tag: str) -> list[Spec]:
    specs = []
    for index in range(count):
        mode, provider, order, files = rng.choice(KINDS)
        channel = "web" if rng.random() < 0.5 else "api"
        spec = Spec(index, channel, mode, provider, order, dict(files))
        if channel == "api":
            spec.api_inputs = "url" if provider == "joypix" or rng.random() < 0.5 else "multipart"
            spec.webhook = provider == "lipsync_studio" and rng.random() < 0.5
        spec.prompt = f"{tag} job {index}"  # finds the job(s) it made in the database
        specs.append(spec)
    return specs


# --- the clients -----------------------------------------------------------------------------


class GiveUp(Exception):
    pass


RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class Clients:
    """Members' sessions (web) and keys (API); each spec is asked for until a
    definite answer, with the same form token or Idempotency-Key each time."""

    def __init__(self, run: Run):
        self.run = run
        self.local = threading.local()
        self.next_member = iter(range(10**9))

    # Web: a signed-in session per thread (each thread is its own member).
    def web(self) -> requests.Session:
        session = getattr(self.local, "web", None)
        if session is None:
            member = self.run.members[next(self.next_member) % len(self.run.members)]
            session = requests.Session()
            session.trust_env = False
            session.member = member
            self.local.web = session
            self._login(session)
        return session

    def _login(self, session: requests.Session) -> None:
        base = self.run.studio.web_url

        def attempt():
            session.cookies.clear()
            session.get(f"{base}/login/", timeout=10)
            answer = session.post(
                f"{base}/login/",
                data={
                    "username": session.member.username,
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
                },
                allow_redirects=False,
                timeout=10,
            )
            if answer.status_code != 302:
                raise GiveUp(f"login answered {answer.status_code}")

        self.run.retrying(attempt, what="sign in")

    def api(self) -> requests.Session:
        session = getattr(self.local, "api", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {self.run.api_key}"
            self.local.api = session
        return session

    def ask(self, spec: Spec) -> None:
        try:
            if spec.channel == "web":
                self._web_job(spec)
            else:
                self._api_job(spec)
        except GiveUp as exc:
            spec.answer = f"gave up: {exc}"

    def _web_job(self, spec: Spec) -> None:
        session = self.web()
        token = uuid.uuid4().hex
        data = {
            "mode": spec.mode,
            "provider": spec.provider,
            "resolution": "480p",
            "prompt": spec.prompt,
            "seed": str(spec.index),
            "form_token": token,
        }
        if spec.order:
            data["dialog_order"] = spec.order

        def attempt():
            spec.tries += 1
            files = {
                role: (self.run.media[name].name, self.run.media[name].read_bytes())
                for role, name in spec.files.items()
            }
            answer = session.post(
                f"{self.run.studio.web_url}/studio/jobs/",
                data={**data, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                files=files,
                headers={"X-CSRFToken": session.cookies.get("csrftoken", "")},
                allow_redirects=False,
                timeout=60,
            )
            if answer.status_code == 302 and "/login/" in answer.headers.get("Location", ""):
                self._login(session)
                raise requests.ConnectionError("signed out")
            if answer.status_code >= 500 or answer.status_code == 403:
                raise requests.ConnectionError(f"answered {answer.status_code}")
            return answer

        answer = self.run.retrying(attempt, what=f"job {spec.index} (web)")
        if answer.status_code in (302, 409):  # made, or made by an earlier send of the form
            spec.answer = "accepted"
        else:
            errors = re.findall(r'role="alert"[^>]*>(.*?)</', answer.text, re.S)
            spec.answer = f"refused: {answer.status_code} {' '.join(errors)[:120]}"

    def _api_job(self, spec: Spec) -> None:
        session = self.api()
        run = self.run
        key = uuid.uuid4().hex
        base = run.studio.web_url
        if spec.provider == "joypix":
            model = "motion-2-dialog" if spec.mode == "dialog" else "motion-2"
            body = {f"{role}_url": run.media_url(name) for role, name in spec.files.items()}
            body.update(resolution="480p", prompt=spec.prompt, seed=spec.index)
            url, send = f"{base}/v1/lip-sync/{model}", {"json": body}
        else:
            model = {"dialog": "lipsync-image-multi", "talking_photo": "lipsync-image"}.get(
                spec.mode, "lipsync-video"
            )
            fields = {("mask_image" if r == "mask" else r): n for r, n in spec.files.items()}
            form = {"resolution": "480p", "prompt": spec.prompt, "seed": spec.index}
            if spec.order:
                form["order"] = spec.order
            webhook = run.receiver_url if spec.webhook else None
            if spec.api_inputs == "url":
                form.update({name: run.media_url(media) for name, media in fields.items()})
                body = {"formState": form}
                if webhook:
                    body["webhook"] = webhook
                url, send = f"{base}/api/v1/{model}", {"json": body}
            else:
                data = {k: str(v) for k, v in form.items()}
                if webhook:
                    data["webhook"] = webhook
                files = {
                    name: (run.media[media].name, run.media[media].read_bytes())
                    for name, media in fields.items()
                }
                url, send = f"{base}/api/v1/{model}", {"data": data, "files": files}

        def attempt():
            spec.tries += 1
            answer = session.post(url, headers={"Idempotency-Key": key}, timeout=60, **send)
            if answer.status_code == 429 or answer.status_code >= 500:
                raise requests.ConnectionError(f"answered {answer.status_code}")
            if answer.status_code == 409 and "still being answered" in answer.text:
                raise requests.ConnectionError("409: the first send is still being answered")
            return answer

        answer = run.retrying(attempt, what=f"job {spec.index} (api)")
        if answer.status_code == 200:
            spec.answer = "accepted"
        else:
            spec.answer = f"refused: {answer.status_code} {answer.text[:160]}"


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Kill:
    kind: str
    target: str
    at: float
    in_flight: dict[str, int]


class Run:
    def __init__(self, args: argparse.Namespace, root: Path):
        self.args = args
        self.root = root
        self.rng = random.Random(args.seed)
        self.tag = f"chaos-{args.seed}-{secrets.token_hex(3)}"
        self.stop_chaos = threading.Event()
        self.kills: list[Kill] = []
        self.retries = Counter()
        self.lock = threading.Lock()
        self.started = time.monotonic()

    # Every client request: retried while the web server is down or busy.
    def retrying(self, attempt, *, what: str, budget: float = 240.0):
        deadline = time.monotonic() + budget
        delay = 0.2
        while True:
            try:
                return attempt()
            except RETRYABLE as exc:
                with self.lock:
                    self.retries[type(exc).__name__] += 1
                if time.monotonic() >= deadline:
                    raise GiveUp(f"{what}: no answer within {budget:g} s ({exc})") from None
                time.sleep(delay)
                delay = min(delay * 2, 3.0)

    def media_url(self, name: str) -> str:
        return f"{self.files_url}/{self.media[name].name}"

    # --- setting up -----------------------------------------------------------------------

    def setup(self) -> None:
        args = self.args
        self.data_dir = self.root / "data"
        self.data_dir.mkdir()
        self.prefix = self.tag.replace("-", "")
        secret_key = secrets.token_urlsafe(50)
        common = {
            **PIPELINE_ENV,
            "SECRET_KEY": secret_key,
            "SANDBOX_RTF": str(args.rtf),
            "Q_CLUSTER_NAME": self.prefix,
            "CACHE_KEY_PREFIX": self.prefix,
            "Q_WORKERS": str(args.workers),
        }
        if args.database_url:
            pg_create(args.database_url)
        environ = dict(common)
        if args.redis_url:
            environ["REDIS_URL"] = args.redis_url
        t0 = time.perf_counter()
        django_start(data_dir=self.data_dir, database_url=args.database_url, **environ)
        self.setup_seconds = time.perf_counter() - t0

        self.media = make_media(self.root / "inputs")
        files = ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(_Quiet, directory=str(self.root / "inputs"))
        )
        self.files_url = f"http://127.0.0.1:{serve(files).server_address[1]}"
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        receiver.lock, receiver.received, receiver.bodies = threading.Lock(), Counter(), []
        self.receiver = serve(receiver)
        self.receiver_url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
        self.servers = [files, receiver]

        self._members()
        env = studio_env(
            data_dir=self.data_dir,
            secret_key=secret_key,
            database_url=args.database_url,
            redis_url=args.redis_url,
            **common,
        )
        self.studio = Studio(env, log_dir=self.root / "logs")

    def _members(self) -> None:
        from django.contrib.auth import get_user_model

        from jobs.accounts.api_keys import api_key_create
        from jobs.credits.ledger import credits_grant

        users = get_user_model()
        self.members = []
        for n in range(max(1, self.args.clients)):
            member = users.objects.create_user(f"member{n}", password=PASSWORD)
            credits_grant(user=member, pool="studio", amount=10**7, key=f"chaos:{n}:studio")
            self.members.append(member)
        owner = self.members[0]
        credits_grant(user=owner, pool="api", amount=10**8, key="chaos:api")
        _key, self.api_key = api_key_create(owner=owner, name="chaos")

    def start(self) -> None:
        args, studio = self.args, self.studio
        faults = {"retry_after": 1, "slow_poll_seconds": 2, "slow_output_seconds": 2}
        storage = self.data_dir / "sandbox"
        cmd = [PYTHON, MANAGE, "sandbox", "--port", str(studio.sandbox_port)]
        cmd += ["--rtf", str(args.rtf), "--min-delay", "0.3", "--storage-dir", str(storage)]
        cmd += [
            "--keep-state",
            "--fault-rate",
            str(args.fault_rate),
            "--fault-seed",
            str(args.seed),
        ]
        studio.start("sandbox", cmd, {"SANDBOX_FAULTS": json.dumps(faults)})
        studio.wait_http(f"{studio.sandbox_url}/_sandbox/health", studio.processes["sandbox"])
        studio.start_web()
        studio.start_node("node1", workers=args.workers)
        studio.start_node("node2", workers=args.workers)

    # --- the storm ------------------------------------------------------------------------

    def in_flight(self) -> dict[str, int]:
        from django.db import close_old_connections

        from jobs.models import DeliveryStatus, Job, JobState, WebhookDelivery

        try:
            counts = Counter(
                Job.objects.filter(state__in=JobState.live()).values_list("state", flat=True)
            )
            counts["webhooks pending"] = WebhookDelivery.objects.filter(
                status=DeliveryStatus.PENDING
            ).count()
            return dict(counts)
        finally:
            close_old_connections()

    def kill_one(self, rng: random.Random, kind: str) -> None:
        studio = self.studio
        node = rng.choice(["node1", "node2"])
        target = node if kind in ("worker", "node") else kind
        in_flight = self.in_flight()
        if kind == "worker":
            process = studio.processes[node]
            # The node's own processes below its sentinel: workers, monitor, pusher.
            sentinels = descendants(process.pid)
            inner = [pid for pid in sentinels if pid not in _children(process.pid)]
            if not inner:
                return
            pid = rng.choice(inner)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            target = f"{node} pid {pid}"
        else:
            studio.kill(target)
        self.kills.append(Kill(kind, target, time.monotonic() - self.started, in_flight))
        if kind != "worker":
            if self.stop_chaos.wait(rng.uniform(0.5, 3.0)):
                pass
            studio.restart(target)

    def chaos(self, duration: float) -> None:
        """Kill at random moments over `duration` seconds (seeded), then stop."""
        rng = random.Random(self.args.seed * 7919)
        kills = self.args.kills
        start = time.monotonic()
        moments = sorted(rng.uniform(2.0, max(3.0, duration)) for _ in range(kills))
        # Every kind once (in a seeded order), then as the weights say.
        kinds = rng.sample(KILL_KINDS, len(KILL_KINDS))
        kinds += rng.choices(KILL_KINDS, KILL_WEIGHTS, k=max(0, kills - len(kinds)))
        for moment, kind in zip(moments, kinds, strict=False):
            wait = start + moment - time.monotonic()
            if wait > 0 and self.stop_chaos.wait(wait):
                break
            try:
                self.kill_one(rng, kind)
            except AssertionError as exc:  # a process did not come back: say so, go on
                print(f"restart failed: {exc}", file=sys.stderr)
                self.restart_failures += 1

    def storm(self) -> None:
        args = self.args
        self.restart_failures = 0
        self.specs = make_specs(args.jobs, self.rng, self.tag)
        clients = Clients(self)
        work: queue.Queue[Spec] = queue.Queue()
        for spec in self.specs:
            work.put(spec)

        def client():
            while True:
                try:
                    spec = work.get_nowait()
                except queue.Empty:
                    return
                clients.ask(spec)
                time.sleep(self.rng.uniform(0.0, 0.3))

        # Kills are spread over about the time the jobs take to make and settle.
        expected = max(20.0, args.jobs * (0.9 if args.short else 1.1))
        chaos = threading.Thread(target=self.chaos, args=(expected,), daemon=True)
        threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
        self.storm_started = time.monotonic()
        chaos.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.submitted_seconds = time.monotonic() - self.storm_started
        chaos.join()  # every kill, some while the last jobs are still live
        self.storm_seconds = time.monotonic() - self.storm_started

    def settle(self) -> bool:
        """Every process up, then wait until no job is live and no webhook pending."""
        for name, process in self.studio.processes.items():
            if not process.alive:
                self.studio.restart(name)
        deadline = time.monotonic() + self.args.settle_timeout
        while time.monotonic() < deadline:
            if not any(self.in_flight().values()):
                self.settle_seconds = time.monotonic() - self.storm_started - self.storm_seconds
                return True
            time.sleep(1.0)
        self.settle_seconds = self.args.settle_timeout
        return False

    # --- the checks -----------------------------------------------------------------------

    def check(self, quiet: bool) -> tuple[list[str], list[str]]:
        from django.core.files.storage import default_storage
        from django.core.management import call_command
        from django.core.management.base import CommandError
        from django.db import close_old_connections

        from jobs.models import (
            DeliveryStatus,
            EntryKind,
            Job,
            JobState,
            LedgerEntry,
            WebhookDelivery,
        )

        close_old_connections()
        figures: list[str] = []
        failures: list[str] = []
        jobs = list(
            Job.objects.filter(prompt__startswith=f"{self.tag} job ").prefetch_related("inputs")
        )
        by_prompt: dict[str, list[Job]] = {}
        for job in jobs:
            by_prompt.setdefault(job.prompt, []).append(job)
        for spec in self.specs:
            made = by_prompt.get(spec.prompt, [])
            spec.job_id = made[0].pk if made else None

        # Every job terminal.
        live = [job for job in jobs if job.state in JobState.live()]
        accepted = [s for s in self.specs if s.answer == "accepted"]
        missing = [s for s in accepted if s.job_id is None]
        lost = len(live) + len(missing)
        if not quiet:
            failures.append(f"not quiet within {self.args.settle_timeout:g} s")
        if live:
            failures.append(f"{len(live)} job(s) not terminal: " + _ids(live))
        if missing:
            failures.append(f"{len(missing)} accepted job(s) not in the database")

        # No request made two jobs.
        doubled = {p: js for p, js in by_prompt.items() if len(js) > 1}
        if doubled:
            failures.append(
                f"{len(doubled)} request(s) made more than one job: "
                + "; ".join(_ids(js) for js in doubled.values())
            )

        # No job submitted to the provider more than once.
        answer = requests.get(
            f"{self.studio.sandbox_url}/_sandbox/submissions",
            headers={"Authorization": f"Bearer {self.studio.env['SANDBOX_API_KEY']}"},
            timeout=10,
        )
        answer.raise_for_status()
        by_key = answer.json()
        tasks_of = {job.pk: by_key.get(_key_of(job), {}).get("tasks", 0) for job in jobs}
        twice = [job for job in jobs if tasks_of[job.pk] > 1]
        if twice:
            failures.append(
                f"{len(twice)} job(s) submitted more than once: "
                + ", ".join(f"#{j.pk} x{tasks_of[j.pk]}" for j in twice)
            )
        known = {_key_of(job) for job in jobs}
        strays = {k: v for k, v in by_key.items() if k not in known and v.get("tasks")}
        if strays:
            failures.append(f"{len(strays)} provider task(s) match no job: {sorted(strays)[:5]}")
        without_task = [j for j in jobs if j.state == JobState.COMPLETED and tasks_of[j.pk] != 1]
        if without_task:
            failures.append(f"{len(without_task)} completed job(s) with no provider task")

        # Every completed job's video in storage.
        completed = [j for j in jobs if j.state == JobState.COMPLETED]
        no_video = [
            j
            for j in completed
            if not j.output
            or not default_storage.exists(j.output.name)
            or default_storage.size(j.output.name) == 0
        ]
        if no_video:
            failures.append(
                f"{len(no_video)} completed job(s) without their video: " + _ids(no_video)
            )

        # Every hold resolved: captured for a completed job, released for a failed one.
        holds = LedgerEntry.objects.filter(kind=EntryKind.HOLD, job__in=jobs).prefetch_related(
            "resolutions"
        )
        holds_of: dict[int, list] = {}
        for hold in holds:
            holds_of.setdefault(hold.job_id, []).append(hold)
        hold_problems = []
        for job in jobs:
            mine = holds_of.get(job.pk, [])
            kinds = [r.kind for h in mine for r in h.resolutions.all()]
            want = EntryKind.CAPTURE if job.state == JobState.COMPLETED else EntryKind.RELEASE
            if job.state in JobState.terminal() and (len(mine) != 1 or kinds != [want]):
                hold_problems.append(f"#{job.pk} ({job.state}: {len(mine)} hold(s), {kinds})")
        if hold_problems:
            failures.append(
                f"{len(hold_problems)} hold(s) not resolved: " + ", ".join(hold_problems[:10])
            )

        # check_ledger, as staff would run it.
        out = io.StringIO()
        try:
            call_command("check_ledger", stdout=out)
            ledger_differences = 0
        except CommandError as exc:
            ledger_differences = len([line for line in out.getvalue().splitlines() if line.strip()])
            failures.append(f"check_ledger: {exc}\n{out.getvalue()}")

        # Every webhook owed delivered, and received.
        owed = list(WebhookDelivery.objects.filter(job__in=jobs))
        with self.receiver.lock:
            received = Counter(self.receiver.received)
        undelivered = [d for d in owed if d.status != DeliveryStatus.DELIVERED]
        unheard = [d for d in owed if received[d.event_id] == 0]
        wanted = [j for j in jobs if j.api_webhook and j.state in JobState.terminal()]
        unowed = [j for j in wanted if not any(d.job_id == j.pk for d in owed)]
        if undelivered or unheard or unowed:
            failures.append(
                f"webhooks: {len(undelivered)} not delivered, {len(unheard)} never received, "
                f"{len(unowed)} ended job(s) owed none"
            )

        # --- figures ---
        stats = requests.get(
            f"{self.studio.sandbox_url}/_sandbox/stats",
            headers={"Authorization": f"Bearer {self.studio.env['SANDBOX_API_KEY']}"},
            timeout=10,
        ).json()
        answers = sum(stats.get("answers", {}).values())
        faulted = sum(stats.get("faulted", {}).values())
        kills = Counter(k.kind for k in self.kills)
        hit = Counter()
        for kill in self.kills:
            for state, n in kill.in_flight.items():
                if n:
                    hit[state] += 1
        states = Counter(j.state for j in jobs)
        channels = Counter(f"{s.channel} {s.answer.split(':')[0]}" for s in self.specs)
        errors = Counter(_short_error(j.error) for j in jobs if j.state == JobState.FAILED)
        modes = Counter(f"{j.mode}/{j.provider}" for j in jobs)
        duplicates = len(twice) + len(doubled)
        figures += [
            f"jobs asked for: {len(self.specs)} ({_counts(channels)})",
            f"jobs made: {len(jobs)}: {states.get('completed', 0)} completed, "
            f"{states.get('failed', 0)} failed, {len(live)} live",
            "by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(modes.items())),
            "failures by reason: "
            + ("; ".join(f"{v} x {k}" for k, v in errors.most_common()) or "none"),
            f"kills: {len(self.kills)} ({', '.join(f'{k} {kills.get(k, 0)}' for k in KILL_KINDS)})"
            + (f"; {self.restart_failures} restart(s) failed" if self.restart_failures else ""),
            "kills that found work in flight, by phase: "
            + (", ".join(f"{k} {v}" for k, v in sorted(hit.items())) or "none"),
            f"provider answers: {answers} ({_counts(Counter(stats.get('answers', {})))}); "
            f"faulted {faulted} = {100 * faulted / max(1, answers):.1f} %",
            "faults: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.get("faulted", {}).items())),
            f"provider tasks: {sum(v.get('tasks', 0) for v in by_key.values())} for "
            f"{sum(1 for v in by_key.values() if v.get('tasks'))} job(s); submit POSTs "
            f"{sum(v.get('posts', 0) for v in by_key.values())}",
            f"client retries (no answer / 5xx / 429 while processes were down): "
            f"{sum(self.retries.values())}",
            f"webhooks owed {len(owed)}, delivered {len(owed) - len(undelivered)}, "
            f"received {sum(1 for d in owed if received[d.event_id])} "
            f"({sum(received[d.event_id] for d in owed)} POSTs)",
            f"lost {lost}, duplicates {duplicates}, ledger differences {ledger_differences}, "
            f"unresolved holds {len(hold_problems)}",
            f"wall time: {time.monotonic() - self.started:.0f} s "
            f"(setup {self.setup_seconds:.0f} s, "
            f"jobs asked for in {self.submitted_seconds:.0f} s, storm {self.storm_seconds:.0f} s, "
            f"settled {self.settle_seconds:.0f} s after)",
        ]
        return figures, failures


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _key_of(job) -> str:
    """The sandbox's submission key of a job: its inputs' file names, sorted."""
    return "+".join(sorted(inp.file.name.rsplit("/", 1)[-1] for inp in job.inputs.all()))


def _ids(jobs) -> str:
    shown = ", ".join(f"#{j.pk} {j.state}" for j in list(jobs)[:10])
    return shown + (" ..." if len(jobs) > 10 else "")


def _short_error(error: str) -> str:
    error = re.sub(r"\d+", "N", error or "(no message)")
    return error[:90]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="lipsync-chaos-"))
    run = Run(args, root)
    code = 1
    try:
        run.setup()
        from django.db import connection

        database = f"{connection.vendor}" + (" + Redis" if args.redis_url else " + ORM broker")
        with run.studio:
            run.start()
            run.storm()
            quiet = run.settle()
            figures, failures = run.check(quiet)
            print(f"chaos run, seed {args.seed}, fault rate {args.fault_rate:g}, {database}")
            for line in figures:
                print("  " + line)
            for line in machine_info(database=database):
                print("  " + line)
            print(f"  command: {reproduce_command(argv)}")
            if failures:
                print("FAILED:")
                for line in failures:
                    print("  - " + line)
                print(run.studio.tails(15))
            else:
                print(
                    "OK: every job terminal, none submitted twice, every video stored, "
                    "every hold resolved, ledger clean, every webhook delivered"
                )
            code = 1 if failures else 0
    finally:
        for server in getattr(run, "servers", []):
            server.shutdown()
            server.server_close()
        if args.redis_url and hasattr(run, "prefix"):
            redis_forget(args.redis_url, run.prefix)
        if args.keep:
            print(f"kept: {root}" + (f" and {args.database_url}" if args.database_url else ""))
        else:
            from django.db import connections

            connections.close_all()
            if args.database_url:
                pg_drop(args.database_url)
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
