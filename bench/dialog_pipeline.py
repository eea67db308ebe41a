"""Dialog jobs through the studio's real pipeline, over real HTTP, against the
sandbox provider; and the same jobs done by a plain client that polls every 5 s.

    .venv/bin/python bench/dialog_pipeline.py [--jobs 20] [--rtf 0.5] [--seconds 3-8]

Prints, for each of the two ways of running the same N dialog jobs:

- provider calls per completed job (submits + status GETs + output downloads),
  counted by the sandbox itself;
- the delay from the provider finishing a task (the sandbox's own
  `Task.completed_at`) to the moment the job is seen completed: for the studio,
  when an open Studio page (simulated: a signed-in HTTP client polling
  /studio/cards/?since=... at the intervals the page's #cards-poller gives, as
  poller.js does: 2 s, 1 s inside a card's predicted finish window, 0.5 s
  while one is archiving or in the window of a provider that calls back)
  first receives the card `job-N` in state `completed`; for the plain client,
  when its status GET first answers `completed`; and, for the studio, that
  delay less the archive's own download (what the studio adds), and its
  steps: webhook received, poll answered, archive started, the download,
  archived, page saw it;
- machine info and the exact command to reproduce the run.

What runs, all in this process:

- a fresh temporary DATA_DIR (SQLite, migrated, static files collected);
- the studio, Django's WSGIHandler behind a threaded WSGI server on a free
  port; PUBLIC_BASE_URL points at it, so the sandbox fetches each input from
  its signed link there, as a real provider would;
- a SandboxServer on another free port (SANDBOX_URL, SANDBOX_API_KEY and
  SANDBOX_RTF point the studio at it; no JoyPix account, so the sandbox is used);
- the cluster replaced by a thread. `--cluster loop` (the default) calls
  jobs.poller.poll_due(max_seconds=POLL_LOOP_SECONDS) back to back, as if the
  schedule restarted it the moment it ended. `--cluster schedule` models the
  django-q2 setup as shipped: a run every 60 s (migration 0003) plus one
  "kick" per submission (lifecycle.kick_poller), on Q_WORKERS workers, each
  run giving up at once when another holds the poller lease;
- Q_SYNC, so every enqueue() runs its task inline: job_create's submit runs in
  the thread that made the job, a webhook's poll_job in the webhook's request
  (whose poll, on "completed", archives there and then, as its worker would),
  and the archive task queued when the poll loop sees "completed" runs in the
  poll loop's thread (--archive-workers: on worker threads, after the broker's
  poll interval). (On the cluster the task goes to
  the broker, but the same round's archive loop in poller.run_round usually
  claims the job first, so there too the poll loop does the download.)

--download-delay stands in for a large output (a real provider's video from
its storage) by sleeping before each archive download; --cluster schedule
with --schedule-phase shows what the schedule's timing does to latency.

Jobs are made with jobs.uploads.upload_stage + jobs.lifecycle.job_create, one
after another with a small random gap (--stagger), so they do not all finish
at once. The plain client then runs the same jobs (same clip lengths, same
gaps) against a second, fresh sandbox with the same settings, fetching its
inputs from a plain static file server.

A script, not a test: it asserts nothing about time; it prints what it saw.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import secrets
import shlex
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # jobs, lipsync_site and tests.media_factory

# Imported before Django is set up: neither needs settings.
from bench.django_env import django_start  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from jobs.providers.base import SubmitRequest  # noqa: E402
from jobs.providers.http import ProviderError  # noqa: E402
from jobs.providers.joypix import JoyPixAdapter  # noqa: E402
from jobs.providers.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from jobs.providers.sandbox.clock import RenderClock  # noqa: E402
from tests.media_factory import make_audio, make_image  # noqa: E402

# How often static/js/studio/poller.js asks for the cards: read from the
# page's #cards-poller (data-slow-ms, data-fast-ms, data-fastest-ms) when it
# says; these are a page's that does not (before the attributes existed).
PAGE_INTERVAL = 2.0  # while polling,
PAGE_HURRY = 1.0  # while a card is inside its finish window,
PAGE_RUSH = 1.0  # while one is archiving, or in its window with a provider that calls back
PLAIN_INTERVAL = 5.0  # the plain client polls every 5 s from submission
SCHEDULE_EVERY = 60.0  # the "Poll providers" schedule: minutes=1
BROKER_POLL = 0.5  # Q_CLUSTER["poll"] of the ORM broker: a queued task waits up to this
JOYPIX_SUBMIT = "/v1/lip-sync/motion-2-dialog"
JOYPIX_STATUS = "/v1/tasks/"
LIPSYNC_SUBMIT = "/api/v1/lipsync-image-multi"
LIPSYNC_STATUS = "/api/v1/jobs/"
OUTPUTS = "/outputs/"
PASSWORD = secrets.token_urlsafe(16)


# --- Arguments and the plan of jobs -------------------------------------------------


def seconds_range(text: str) -> tuple[float, float]:
    """ "3-8" -> (3.0, 8.0); "5" -> (5.0, 5.0)."""
    lo, _, hi = text.partition("-")
    try:
        lo_f, hi_f = float(lo), float(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError("use SECONDS or MIN-MAX, e.g. 3-8") from None
    if not 1 <= lo_f <= hi_f <= 600:
        raise argparse.ArgumentTypeError("clip lengths must satisfy 1 <= MIN <= MAX <= 600")
    return lo_f, hi_f


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="dialog jobs per run (default 20)")
    parser.add_argument(
        "--rtf",
        type=float,
        default=0.5,
        help="sandbox real-time factor: seconds of processing per second of video (default 0.5)",
    )
    parser.add_argument(
        "--seconds",
        type=seconds_range,
        default=(3.0, 8.0),
        metavar="MIN-MAX",
        help="length of each job's longer audio, drawn uniformly (default 3-8)",
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.5,
        help="mean gap in seconds between two jobs; each gap is 0.5x-1.5x this (default 0.5)",
    )
    parser.add_argument(
        "--cluster",
        choices=("loop", "schedule"),
        default="loop",
        help="loop: poll_due back to back; schedule: every 60 s plus kicks (default loop)",
    )
    parser.add_argument(
        "--schedule-phase",
        type=float,
        default=0.0,
        help="with --cluster schedule: seconds since the schedule's last run when the "
        "run starts, 0-60 (default 0: the schedule fires as the first job is made)",
    )
    parser.add_argument(
        "--loop-seconds",
        type=int,
        default=None,
        help="POLL_LOOP_SECONDS, how long one poll_due run lasts (default: the setting, 50)",
    )
    parser.add_argument(
        "--download-delay",
        type=float,
        default=0.0,
        help="extra seconds added to each archive download, as a large output from a "
        "real provider would take (default 0)",
    )
    parser.add_argument(
        "--archive-workers",
        type=int,
        default=0,
        help="run each archive_job task on one of N worker threads, after the broker's "
        "poll interval, as the cluster does (default 0: inline in the poll loop's "
        "thread, as Q_SYNC runs it)",
    )
    parser.add_argument("--resolution", choices=("480p", "720p"), default="480p")
    side = parser.add_argument_group(
        "side by side (realistic clock)",
        "--side-by-side: one run in which the studio and a plain 5 s poller watch the SAME "
        "provider tasks, on the sandbox's realistic clock (jobs/providers/sandbox/clock.py); "
        "prints calls per job, finished -> seen for both, the simulated lower bound and "
        "the summary line",
    )
    side.add_argument("--side-by-side", action="store_true")
    side.add_argument(
        "--spread", type=float, default=0.1, help="render-time factor p97.5 = 1 + this (0.1)"
    )
    side.add_argument("--queue-seconds", type=float, default=0.0, help="mean queue wait (0)")
    side.add_argument("--outliers", type=float, default=0.0, help="share of 3x jobs (0)")
    side.add_argument(
        "--history",
        type=int,
        default=40,
        help="earlier finished jobs the studio has learnt from, drawn from the same clock "
        "(default 40, a studio that has been running; 0: a cold start on the page's figure)",
    )
    side.add_argument(
        "--provider",
        choices=("joypix", "lipsync_studio"),
        default="joypix",
        help="joypix (polling only) or lipsync_studio (with --webhooks: webhooks on)",
    )
    side.add_argument("--webhooks", action="store_true", help="WEBHOOKS_ALLOW_HTTP=1")
    side.add_argument(
        "--lag-target",
        type=float,
        default=None,
        help="POLL_LAG_TARGET_SECONDS, the lag target until the archive time is measured "
        "(default 3)",
    )
    side.add_argument(
        "--match",
        type=float,
        default=None,
        help="POLL_MATCH_SECONDS: the plain poller whose p95 the schedule matches once the "
        "archive time is measured (default 5; 0: the fixed --lag-target throughout)",
    )
    side.add_argument(
        "--warm-up",
        type=int,
        default=None,
        help="jobs run to the end before the measured ones, not counted, so the studio has "
        "measured its own archive time as a running studio has (default 10, the fewest it "
        "goes by; 0: the measured jobs teach it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the job plan")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up on a run after this many seconds"
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.rtf < 0 or args.stagger < 0:
        parser.error("--jobs must be >= 1, --rtf and --stagger >= 0")
    if not 0 <= args.schedule_phase < SCHEDULE_EVERY:
        parser.error("--schedule-phase must be in [0, 60)")
    if args.warm_up is None:
        args.warm_up = 10 if args.side_by_side else 0
    return args


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line with every option spelled out, defaults included."""
    lo, hi = args.seconds
    parts = [
        ".venv/bin/python",
        "bench/dialog_pipeline.py",
        f"--jobs={args.jobs}",
        f"--rtf={args.rtf:g}",
        f"--seconds={lo:g}-{hi:g}",
        f"--stagger={args.stagger:g}",
        f"--cluster={args.cluster}",
        *([f"--schedule-phase={args.schedule_phase:g}"] if args.cluster == "schedule" else []),
        f"--resolution={args.resolution}",
        f"--seed={args.seed}",
    ]
    if args.loop_seconds is not None:
        parts.append(f"--loop-seconds={args.loop_seconds}")
    if args.download_delay:
        parts.append(f"--download-delay={args.download_delay:g}")
    if args.archive_workers:
        parts.append(f"--archive-workers={args.archive_workers}")
    if args.side_by_side:
        parts += [
            "--side-by-side",
            f"--spread={args.spread:g}",
            f"--queue-seconds={args.queue_seconds:g}",
            f"--outliers={args.outliers:g}",
            f"--history={args.history}",
            f"--provider={args.provider}",
            *(["--webhooks"] if args.webhooks else []),
            *([f"--lag-target={args.lag_target:g}"] if args.lag_target else []),
            *([f"--match={args.match:g}"] if args.match is not None else []),
            f"--warm-up={args.warm_up}",
        ]
    return shlex.join(parts)


@dataclass(frozen=True)
class PlannedJob:
    index: int
    offset: float  # seconds after the run starts that the job is made
    left: Path
    right: Path
    seconds: float  # the longer audio's length: what the provider renders


def plan_jobs(args: argparse.Namespace, media_dir: Path) -> tuple[list[PlannedJob], Path]:
    """Every job's audio (an MP3 left, a WAV right; one of them shorter) and
    its start offset; and the one photo they share. Made before any clock runs."""
    rng = random.Random(args.seed)
    photo = make_image(media_dir / "two-people.jpg", 960, 640, fmt="jpeg")
    plan, offset = [], 0.0
    for i in range(args.jobs):
        seconds = round(rng.uniform(*args.seconds), 2)
        other = round(seconds * rng.uniform(0.6, 1.0), 2)
        left_s, right_s = (seconds, other) if rng.random() < 0.5 else (other, seconds)
        left = make_audio(media_dir / f"job{i:03d}-left.mp3", left_s, fmt="mp3", tone_hz=220)
        right = make_audio(media_dir / f"job{i:03d}-right.wav", right_s, fmt="wav", tone_hz=330)
        plan.append(PlannedJob(i, offset, left, right, max(left_s, right_s)))
        offset += args.stagger * rng.uniform(0.5, 1.5)
    return plan, photo


# --- Django, set up on a fresh data directory -------------------------------------------


def configure_django(args, *, data_dir: Path, studio_url: str, sandbox: SandboxServer) -> None:
    """Django on `data_dir`, pointed at the sandbox, tasks run inline."""
    environ = {
        "PUBLIC_BASE_URL": studio_url,
        "SANDBOX_URL": sandbox.url,
        "SANDBOX_API_KEY": sandbox.config.api_key,
        "SANDBOX_RTF": repr(args.rtf),
        # The sandbox's output links are on 127.0.0.1 (see jobs/net/fetch.py).
        "FETCH_ALLOW_LOOPBACK": "1",
        "Q_SYNC": "1",
    }
    if args.loop_seconds is not None:
        environ["POLL_LOOP_SECONDS"] = str(args.loop_seconds)
    if args.webhooks:
        environ["WEBHOOKS_ALLOW_HTTP"] = "1"
    if getattr(args, "lag_target", None):
        environ["POLL_LAG_TARGET_SECONDS"] = repr(args.lag_target)
    if getattr(args, "match", None) is not None:
        environ["POLL_MATCH_SECONDS"] = repr(args.match)
    django_start(data_dir=data_dir, **environ)


# --- Servers -------------------------------------------------------------------------------


def studio_server():
    """A threaded WSGI server bound to a free port; the app is set after setup."""
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the base's name)
            pass

    return ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)


def serve_in_thread(httpd, name: str) -> None:
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    ).start()


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def realistic_clock(args, *, seed_offset: int = 0) -> RenderClock:
    return RenderClock(
        spread=args.spread,
        queue_seconds=args.queue_seconds,
        outliers=args.outliers,
        seed=args.seed + seed_offset,
        rtf_by_resolution={args.resolution: args.rtf},
    )


def new_sandbox(args, api_key: str) -> SandboxServer:
    if not args.side_by_side:
        return SandboxServer(SandboxConfig(api_key=api_key, rtf=args.rtf)).start()
    # The realistic clock sets when a task completes, unless rendering it takes
    # longer: on a loaded machine 40 renders queued for 2 slots did, and the
    # provider then ran slower than its clock. 4 frames a second and more slots
    # keep the rendering (this process's CPU, shared with the studio) well
    # inside every task's time; the output is still a real MP4 to archive.
    config = SandboxConfig(
        api_key=api_key, rtf=args.rtf, clock=realistic_clock(args), fps=4, render_workers=4
    )
    return SandboxServer(config).start()


# --- The cluster, as a thread (or a small model of the django-q2 schedule) ---------------


class LoopCluster:
    """poll_due back to back: each run lasts up to POLL_LOOP_SECONDS, or ends
    when no job is live; the next starts after the broker's poll interval (the
    time a kick or the schedule would take to reach a worker)."""

    def __init__(self):
        self.stopping = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=self._run, name="cluster", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        from django.conf import settings
        from django.db import close_old_connections

        from jobs.pipeline import poller

        while not self.stopping.is_set():
            if poller.poll_due(max_seconds=settings.POLL_LOOP_SECONDS):
                self.runs += 1
            close_old_connections()
            self.stopping.wait(BROKER_POLL)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=120)


class ArchiveWorkers:
    """Stands in for lifecycle.enqueue: archive_job tasks go to worker threads
    after the broker's poll interval, as on the cluster; every other task
    still runs inline (Q_SYNC)."""

    def __init__(self, workers: int, *, inline):
        self.inline = inline
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="archive")

    def __call__(self, func: str, *args) -> None:
        if func != "jobs.tasks.archive_job":
            self.inline(func, *args)
            return
        timer = threading.Timer(BROKER_POLL, lambda: self.pool.submit(self._run, *args))
        timer.daemon = True
        timer.start()

    @staticmethod
    def _run(job_id: int) -> None:
        from django.db import close_old_connections

        from jobs import tasks

        try:
            tasks.archive_job(job_id)
        finally:
            close_old_connections()


class ScheduledCluster:
    """The shipped setup: the "Poll providers" schedule starts poll_due every
    60 s, and each submission kicks one (lifecycle.kick_poller, patched here
    because Q_SYNC makes the real one do nothing); both go through the broker
    to one of Q_WORKERS workers. A run that finds the lease taken returns 0."""

    def __init__(self, phase: float = 0.0):
        from django.conf import settings

        self.phase = phase
        self.stopping = threading.Event()
        self.runs = 0  # runs that held the lease
        self.lost = 0  # runs that found another holding it
        self.workers = ThreadPoolExecutor(
            max_workers=settings.Q_CLUSTER["workers"], thread_name_prefix="q-worker"
        )
        self.ticker = threading.Thread(target=self._tick, name="q-schedule", daemon=True)

    def start(self) -> None:
        from jobs.pipeline import lifecycle

        lifecycle.kick_poller = self.kick
        self.ticker.start()

    def kick(self) -> None:
        timer = threading.Timer(BROKER_POLL, self._enqueue)
        timer.daemon = True
        timer.start()

    def _enqueue(self) -> None:
        if self.stopping.is_set():
            return
        try:
            self.workers.submit(self._poll_due)
        except RuntimeError:  # shut down meanwhile
            pass

    def _tick(self) -> None:
        # The schedule last ran `phase` seconds ago: its next run is due then.
        if self.stopping.wait((SCHEDULE_EVERY - self.phase) % SCHEDULE_EVERY):
            return
        while not self.stopping.is_set():
            self._enqueue()
            self.stopping.wait(SCHEDULE_EVERY)

    def _poll_due(self) -> None:
        from django.conf import settings
        from django.db import close_old_connections

        from jobs.pipeline import poller

        try:
            if poller.poll_due(max_seconds=settings.POLL_LOOP_SECONDS):
                self.runs += 1
            else:
                self.lost += 1
        finally:
            close_old_connections()

    def stop(self) -> None:
        self.stopping.set()
        self.workers.shutdown(wait=True, cancel_futures=True)


# --- The open Studio page -------------------------------------------------------------------

ARTICLE = re.compile(r"<article\b[^>]*>", re.S)
JOB_ID = re.compile(r'\bid="job-(\d+)"')
CARD_STATE = re.compile(r'\bclass="[^"]*\bjob-card--([a-z_]+)\b')
CREATED = re.compile(r'\bdata-created="(\d+)"')
POLLER = re.compile(r'<div\b[^>]*\bid="cards-poller"[^>]*>', re.S)
DATA = re.compile(r'\bdata-(since|polling|ticket|slow-ms|fast-ms|fastest-ms)="([^"]*)"')
FINISH = re.compile(r'\bdata-finish-from="(\d+)" data-finish-until="(\d+)"')
WEBHOOKS = re.compile(r'\bdata-webhooks="1"')


@dataclass(frozen=True)
class PageCard:
    state: str
    created: int | None  # data-created, epoch ms
    window: tuple[int, int] | None  # data-finish-from/-until, epoch ms
    webhooks: bool  # data-webhooks: its provider calls back when done


def parse_cards(text: str) -> dict[int, PageCard]:
    """job pk -> what the page reads of its card, for every job card in a page
    or an answer."""
    cards = {}
    for tag in ARTICLE.findall(text):
        pk, state, created = JOB_ID.search(tag), CARD_STATE.search(tag), CREATED.search(tag)
        finish = FINISH.search(tag)
        if pk and state:
            cards[int(pk.group(1))] = PageCard(
                state=state.group(1),
                created=int(created.group(1)) if created else None,
                window=(int(finish.group(1)), int(finish.group(2))) if finish else None,
                webhooks=bool(WEBHOOKS.search(tag)),
            )
    return cards


@dataclass(frozen=True)
class Poller:
    """The Studio page's #cards-poller: its cursor, whether it polls, and its
    intervals in seconds (slow / fast / fastest, as poller.js reads them)."""

    since: str
    polling: bool
    slow: float = PAGE_INTERVAL
    fast: float = PAGE_HURRY
    fastest: float = PAGE_RUSH
    ticket: str = ""  # data-ticket: the cheap "nothing changed" pass (card_tickets)


def parse_poller(text: str) -> Poller:
    tag = POLLER.search(text)
    if tag is None:
        raise RuntimeError("the Studio page has no #cards-poller")
    data = dict(DATA.findall(tag.group(0)))
    slow = float(data.get("slow-ms", PAGE_INTERVAL * 1000)) / 1000
    fast = float(data.get("fast-ms", PAGE_HURRY * 1000)) / 1000
    fastest = float(data.get("fastest-ms", fast * 1000)) / 1000
    polling = data.get("polling") == "1"
    return Poller(data["since"], polling, slow, fast, fastest, data.get("ticket", ""))


class StudioPage:
    """The member's open Studio page, polling as static/js/studio/poller.js does.

    The page is loaded (GET /) once the first job exists. Its one
    #cards-poller asks GET /studio/cards/?since=<cursor>&newest=&oldest= (the
    creation times of the cards it holds; its card ticket in X-Cards-Ticket,
    renewed by the answers) every 2 s while polling is on, every
    second while a card it holds is inside its finish window
    (data-finish-from/-until), every 0.5 s while one is archiving or inside
    its window with a provider that calls back (data-webhooks): the
    intervals the page's #cards-poller gives. One request behind the other. An answer moves
    the cursor (X-Cards-Since) and says whether to go on (X-Cards-Polling);
    making a job through the page asks at once, which `rearm()` stands in for.
    """

    def __init__(self, base_url: str, session: requests.Session):
        self.base_url, self.session = base_url, session
        self.lock = threading.Lock()
        self.since = ""
        self.ticket = ""
        self.polling_on = False
        self.asked = threading.Event()  # a job was made here: ask at once
        self.closing = threading.Event()
        self.created: dict[int, int] = {}  # pk -> data-created of the cards on the page
        self.seen_completed: dict[int, float] = {}  # pk -> time.time() of first completed card
        self.last_state: dict[int, str] = {}
        self.windows: dict[int, tuple[int, int]] = {}  # pk -> a rendering card's finish window
        self.calls_back: set[int] = set()  # pks of cards whose provider sends a webhook
        self.intervals = Poller("", False)
        self.requests = 0
        self.bytes = 0
        self.stops = 0  # answers that turned the polling off
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name="studio-page", daemon=True)

    def open(self) -> None:
        response = self.session.get(f"{self.base_url}/", timeout=30)
        response.raise_for_status()
        self._saw(response.text, time.time())
        poller = parse_poller(response.text)
        if not poller.polling:
            raise RuntimeError("the Studio page loaded with its #cards-poller off")
        with self.lock:
            self.since, self.polling_on, self.intervals = poller.since, True, poller
            self.ticket = poller.ticket
        self.thread.start()

    def rearm(self) -> None:
        """As the job-created answer does: ask for the cards at once."""
        self.asked.set()

    def _saw(self, text: str, at: float) -> None:
        with self.lock:
            for pk, card in parse_cards(text).items():
                if card.created is not None:
                    self.created[pk] = card.created
                self.last_state[pk] = card.state
                if card.window:
                    self.windows[pk] = card.window
                else:
                    self.windows.pop(pk, None)
                if card.webhooks:
                    self.calls_back.add(pk)
                else:
                    self.calls_back.discard(pk)
                if card.state == "completed":
                    self.seen_completed.setdefault(pk, at)

    def seen(self) -> set[int]:
        with self.lock:
            return set(self.seen_completed)

    def interval(self) -> float:
        """As poller.js: the fastest interval while a card is archiving or
        inside the finish window of a provider that calls back, the fast one
        while inside a window, else the slow one."""
        now_ms = time.time() * 1000
        every = self.intervals
        with self.lock:
            if "archiving" in self.last_state.values():
                return every.fastest
            inside = {pk for pk, (lo, hi) in self.windows.items() if lo <= now_ms <= hi}
        if inside & self.calls_back:
            return every.fastest
        return every.fast if inside else every.slow

    def _run(self) -> None:
        # poller.js ticks at its fastest interval; it asks on a tick once the
        # interval that applies now has passed since the last ask.
        tick = self.intervals.fastest
        next_tick = time.monotonic() + tick
        last_ask = time.monotonic()
        while not self.closing.is_set():
            asked = self.asked.wait(max(0.0, next_tick - time.monotonic()))
            if self.closing.is_set():
                break
            if not asked:
                next_tick += tick  # the page's interval ticks on regardless
                if not self.polling:
                    continue
                now = time.monotonic()
                # Within a fifth of a tick counts: timers fire a little early or late.
                if now - last_ask < self.interval() - tick / 5:
                    continue
                last_ask = now
            self.asked.clear()
            with self.lock:
                params = {"since": self.since}
                if self.created:
                    params["newest"] = max(self.created.values())
                    params["oldest"] = min(self.created.values())
            try:
                response = self.session.get(
                    f"{self.base_url}/studio/cards/",
                    params=params,
                    headers={"X-Cards-Ticket": self.ticket},
                    timeout=30,
                )
            except requests.RequestException:
                self.errors += 1  # the cursor stays: the next ask repeats it
                continue
            at = time.time()
            self.requests += 1
            self.bytes += len(response.content)
            if response.status_code != 200:
                self.errors += 1
                continue
            self._saw(response.text, at)
            polling = response.headers.get("X-Cards-Polling") == "1"
            with self.lock:
                self.since = response.headers.get("X-Cards-Since", self.since)
                self.ticket = response.headers.get("X-Cards-Ticket", self.ticket)
                if self.polling_on and not polling:
                    self.stops += 1
                self.polling_on = polling

    @property
    def polling(self) -> bool:
        with self.lock:
            return self.polling_on

    def close(self) -> None:
        self.closing.set()
        self.asked.set()
        if self.thread.is_alive():
            self.thread.join(timeout=35)


def signed_in_session(base_url: str, username: str, password: str) -> requests.Session:
    """Sign in through the real login form."""
    session = requests.Session()
    session.trust_env = False
    session.get(f"{base_url}/login/", timeout=30).raise_for_status()
    response = session.post(
        f"{base_url}/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
        allow_redirects=False,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise RuntimeError(f"signing in failed (HTTP {response.status_code})")
    return session


# --- Results --------------------------------------------------------------------------------


@dataclass
class JobResult:
    completed: bool
    polls: int = 0
    downloads: int = 0
    provider_done: float | None = None  # sandbox Task.completed_at
    noticed: float | None = None  # the poll that saw "completed" (its answer applied)
    webhook: float | None = None  # studio: the provider's first webhook reached the view
    archive_started: float | None = None  # studio: the archive's download began
    download_seconds: float | None = None  # studio: the archive's own download
    archived: float | None = None  # studio: the job reached "completed"
    seen: float | None = None  # studio: page got the completed card; plain: = noticed
    provider_seconds: float | None = None  # sandbox: submission to completion
    provider_fetch: float | None = None  # sandbox: submission to inputs fetched
    task_id: str = ""


@dataclass
class RunResult:
    name: str
    jobs: list[JobResult]
    calls: dict[str, int]  # by kind, as the sandbox counted them
    wall: float
    notes: list[str] = field(default_factory=list)
    calls_since: int = 0  # the sandbox's calls before this (a warm-up's) are not its own


def count_calls(sandbox: SandboxServer, *, since: int = 0) -> dict[str, int]:
    counts = {"submit": 0, "status": 0, "download": 0, "other": 0}
    for call in sandbox.calls[since:]:
        if call.method == "POST" and call.path in (JOYPIX_SUBMIT, LIPSYNC_SUBMIT):
            counts["submit"] += 1
        elif call.method == "GET" and call.path.startswith((JOYPIX_STATUS, LIPSYNC_STATUS)):
            counts["status"] += 1
        elif call.path.startswith(OUTPUTS):
            counts["download"] += 1
        else:
            counts["other"] += 1
    return counts


def calls_by_task(sandbox: SandboxServer) -> dict[str, tuple[int, int]]:
    """task id -> (status GETs, output requests)."""
    by_output = {task.output_name: tid for tid, task in sandbox.tasks.items()}
    polls: dict[str, int] = {}
    downloads: dict[str, int] = {}
    for call in sandbox.calls:
        if call.path.startswith((JOYPIX_STATUS, LIPSYNC_STATUS)):
            tid = call.path.removeprefix(JOYPIX_STATUS).removeprefix(LIPSYNC_STATUS)
            polls[tid] = polls.get(tid, 0) + 1
        elif call.path.startswith(OUTPUTS):
            tid = by_output.get(call.path.removeprefix(OUTPUTS), "?")
            downloads[tid] = downloads.get(tid, 0) + 1
    return {tid: (polls.get(tid, 0), downloads.get(tid, 0)) for tid in sandbox.tasks}


def wait_until(condition, *, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def provider_fields(task) -> dict[str, float | None]:
    """What the sandbox knows of a task: when it finished, how long it took
    from submission, and how much of that went on fetching its inputs."""
    if task is None or task.completed_at is None:
        return {}
    return {
        "provider_done": task.completed_at,
        "provider_seconds": task.completed_at - task.created_at,
        "provider_fetch": task.started_at - task.created_at if task.started_at else None,
    }


def stamp(moment) -> float | None:
    return moment.timestamp() if moment is not None else None


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


# --- Run 1: the studio ---------------------------------------------------------------------


def run_studio(
    args, plan, photo, *, studio_url: str, sandbox: SandboxServer, on_submitted=None
) -> RunResult:
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from jobs.credits.ledger import credits_grant
    from jobs.models import Job, JobState, Pool
    from jobs.pipeline import lifecycle
    from jobs.pipeline import views as pipeline_views
    from jobs.studio.uploads import upload_stage

    # Instrumentation only. When each archive really finished: the commit
    # that made the job "completed" also holds its credit capture, so an
    # on-commit hook on that capture fires at that moment (job_archive goes
    # on to make the gallery poster after the commit). And an optional
    # delay before each download, standing in for a large output.
    archived_at: dict[int, float] = {}
    webhook_at: dict[int, float] = {}
    download_spans: dict[str, tuple[float, float]] = {}  # output URL -> (start, seconds)
    real_capture, real_download = lifecycle.credits_capture, lifecycle._download

    def timed_capture(*, hold, **kwargs):
        entry = real_capture(hold=hold, **kwargs)
        transaction.on_commit(lambda: archived_at.setdefault(hold.job_id, time.time()))
        return entry

    def slow_download(url, **kwargs):
        time.sleep(args.download_delay)
        real_download(url, **kwargs)

    def timed_download(url, **kwargs):
        begun = time.time()
        (slow_download if args.download_delay else real_download)(url, **kwargs)
        download_spans.setdefault(url, (begun, time.time() - begun))

    def timed_receive(**kwargs):
        at = time.time()
        outcome = real_receive(**kwargs)
        if outcome.job_id is not None:
            webhook_at.setdefault(outcome.job_id, at)
        return outcome

    lifecycle.credits_capture = timed_capture
    lifecycle._download = timed_download
    real_receive = pipeline_views.webhook_receive
    pipeline_views.webhook_receive = timed_receive
    if args.archive_workers:
        lifecycle.enqueue = ArchiveWorkers(args.archive_workers, inline=lifecycle.enqueue)

    owner = get_user_model().objects.create_user("bench", "bench@example.com", PASSWORD)
    credits_grant(
        user=owner, pool=Pool.STUDIO, amount=200 * len(plan), key="bench:grant", reason="bench"
    )
    session = signed_in_session(studio_url, "bench", PASSWORD)
    page = StudioPage(studio_url, session)
    if args.cluster == "loop":
        cluster = LoopCluster()
    else:
        cluster = ScheduledCluster(phase=args.schedule_phase)
    cluster.start()

    def stage(kind: str, path: Path, content_type: str):
        uploaded = SimpleUploadedFile(path.name, path.read_bytes(), content_type=content_type)
        return upload_stage(owner=owner, kind=kind, uploaded=uploaded)

    def create(job: PlannedJob):
        files = {
            "image": stage("image", photo, "image/jpeg"),
            "left_audio": stage("audio", job.left, "audio/mpeg"),
            "right_audio": stage("audio", job.right, "audio/wav"),
        }
        return lifecycle.job_create(
            owner=owner,
            mode="dialog",
            provider=getattr(args, "provider", "joypix"),
            resolution=args.resolution,
            files=files,
        )  # Q_SYNC: the submit ran inline, on commit

    warm_notes = warm_up(args, plan, create=create, sandbox=sandbox)
    calls_since = len(sandbox.calls)
    started = time.time()
    pks: list[int] = []
    for job in plan:
        sleep_until(started + job.offset)
        created = create(job)
        pks.append(created.pk)
        if on_submitted is not None:
            on_submitted(job, Job.objects.get(pk=created.pk))
        if len(pks) == 1:
            page.open()  # the member is watching from the first job on
        else:
            page.rearm()

    def settled() -> bool:
        live = Job.objects.filter(pk__in=pks, state__in=JobState.live()).exists()
        done = set(
            Job.objects.filter(pk__in=pks, state=JobState.COMPLETED).values_list("pk", flat=True)
        )
        return not live and (done <= page.seen() or not page.polling)

    finished = wait_until(settled, timeout=args.timeout)
    wall = time.time() - started
    page.close()
    cluster.stop()

    notes = list(warm_notes)
    if not finished:
        notes.append(f"timed out after {args.timeout:g} s with jobs still live")
    per_task = calls_by_task(sandbox)
    tasks = sandbox.tasks
    results = []
    for job in Job.objects.filter(pk__in=pks).order_by("pk"):
        task = tasks.get(job.provider_task_id)
        polls, downloads = per_task.get(job.provider_task_id, (0, 0))
        done = job.state == JobState.COMPLETED
        results.append(
            JobResult(
                task_id=job.provider_task_id,
                completed=done,
                polls=polls,
                downloads=downloads,
                noticed=stamp(job.provider_completed_at),
                webhook=webhook_at.get(job.pk),
                archive_started=download_spans.get(job.output_url, (None, None))[0],
                download_seconds=download_spans.get(job.output_url, (None, None))[1],
                archived=archived_at.get(job.pk),
                seen=page.seen_completed.get(job.pk),
                **provider_fields(task),
            )
        )
        if done and job.pk not in page.seen_completed:
            notes.append(
                f"job #{job.pk} completed but the open page never received its completed card "
                f"(last state on the page: {page.last_state.get(job.pk, 'none')})"
            )
        if not done:
            notes.append(f"job #{job.pk} ended {job.state}: {job.error[:200]}")
    polls_by_studio = Job.objects.filter(pk__in=pks).values_list("poll_count", flat=True)
    notes.append(
        f"page: {page.requests} card requests ({page.requests / len(pks):.1f} per job), "
        f"{page.bytes / 1024:.0f} KiB, stopped {page.stops} time(s), {page.errors} error(s)"
    )
    if isinstance(cluster, ScheduledCluster):
        notes.append(
            f"cluster: {cluster.runs} poll_due run(s), {cluster.lost} found the lease held"
        )
    else:
        notes.append(f"cluster: {cluster.runs} poll_due run(s)")
    notes.append(f"studio poll_count total: {sum(polls_by_studio)}")
    notes.append(lag_note(Job.objects.get(pk=pks[-1])))
    return RunResult(
        "studio", results, count_calls(sandbox, since=calls_since), wall, notes, calls_since
    )


def warm_up(args, plan: list[PlannedJob], *, create, sandbox: SandboxServer) -> list[str]:
    """Run --warm-up jobs (the plan's shortest clips, one every 0.2 s) to the end
    before the measured ones, so the studio has measured its own archive
    time, as a studio that has been running has; then learn once, as the
    next finished job would. Not counted: the calls come before `since`."""
    from jobs.models import Job, JobState
    from jobs.pipeline.render_times import render_times_learn

    count = getattr(args, "warm_up", 0)
    if count <= 0:
        return []
    begun = time.time()
    pks = []
    shortest = sorted(plan, key=lambda job: job.seconds)  # the sooner they end, the better
    for job in (shortest * count)[:count]:
        pks.append(create(job).pk)
        time.sleep(0.2)
    wait_until(
        lambda: not Job.objects.filter(pk__in=pks, state__in=JobState.live()).exists(),
        timeout=args.timeout,
    )
    render_times_learn(Job.objects.get(pk=pks[-1]))
    done = Job.objects.filter(pk__in=pks, state=JobState.COMPLETED).count()
    return [
        f"warm-up: {done} of {count} jobs archived in {time.time() - begun:.0f} s before the "
        f"measured ones ({len(sandbox.calls)} provider calls, not counted)"
    ]


def lag_note(job) -> str:
    """The lag target the measured jobs' schedules used, and what set it."""
    from django.conf import settings

    from jobs.models import RenderTimes
    from jobs.pipeline.render_times import lag_target, render_key, render_times_forget

    render_times_forget()
    provider, model, resolution = render_key(job)
    row = RenderTimes.objects.filter(
        provider=provider, provider_model=model, resolution=resolution
    ).first()
    after = row.after_seen if row else []
    lag = lag_target(job)
    if not after:
        return (
            f"lag target at the end {lag:g} s "
            "(POLL_LAG_TARGET_SECONDS: no archive time measured yet)"
        )
    return (
        f"lag target at the end {lag:.2f} s: a {settings.POLL_MATCH_SECONDS:g} s poller's p95 "
        f"less the studio's archive time (poll saw it -> archived, p5-p95 of the latest jobs: "
        + ", ".join(f"{x:.2f}" for x in after)
        + " s) and the page's wait"
    )


# --- Run 2: a plain client that polls every 5 s ------------------------------------------------


def run_plain(args, plan, photo, *, media_dir: Path, api_key: str) -> RunResult:
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(media_dir)))
    serve_in_thread(files, "plain-files")
    files_url = f"http://127.0.0.1:{files.server_address[1]}"
    sandbox = new_sandbox(args, api_key)
    outcome: dict[int, dict] = {}

    def client(job: PlannedJob, at: float) -> None:
        """Submit, then GET the task 5 s, 10 s, 15 s ... after submitting."""
        sleep_until(at)
        with requests.Session() as http:
            http.trust_env = False
            # The studio's JoyPix adapter speaks the contract; the plain part is
            # when it asks.
            joypix = JoyPixAdapter(base_url=sandbox.url, api_key=api_key, session=http)
            task_id = joypix.submit(
                SubmitRequest(
                    mode="dialog",
                    resolution=args.resolution,
                    left_audio_url=f"{files_url}/{job.left.name}",
                    right_audio_url=f"{files_url}/{job.right.name}",
                    image_url=f"{files_url}/{photo.name}",
                )
            )
            submitted = time.time()
            result = {"task_id": task_id}
            for k in range(1, 10_000):
                sleep_until(submitted + k * PLAIN_INTERVAL)
                status = joypix.status(task_id)
                if status.state == "completed":
                    result["noticed"] = time.time()
                    _video = http.get(status.video_url, timeout=60).content  # the download
                    break
                if status.state == "failed" or time.time() - submitted > args.timeout:
                    break
            outcome[job.index] = result

    started = time.time()
    threads = [
        threading.Thread(target=client, args=(job, started + job.offset), daemon=True)
        for job in plan
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.timeout + 60)
    wall = time.time() - started

    per_task = calls_by_task(sandbox)
    tasks = sandbox.tasks
    results = []
    for job in plan:
        result = outcome.get(job.index, {})
        task = tasks.get(result.get("task_id", ""))
        polls, downloads = per_task.get(result.get("task_id", ""), (0, 0))
        noticed = result.get("noticed")
        results.append(
            JobResult(
                completed=noticed is not None,
                polls=polls,
                downloads=downloads,
                noticed=noticed,
                seen=noticed,
                **provider_fields(task),
            )
        )
    calls = count_calls(sandbox)
    sandbox.stop()
    files.shutdown()
    files.server_close()
    return RunResult("plain 5 s client", results, calls, wall)


# --- Side by side: the studio and a plain 5 s poller on the same tasks ----------------------


class PlainWatcher:
    """A plain client polling every 5 s, watching the tasks the studio submitted
    (so both see the very same render times): from the submission on it GETs the
    task 5 s, 10 s, 15 s... later and downloads the video once it is completed.
    It counts its own calls; the studio's are the sandbox's count less these."""

    def __init__(self, args, sandbox: SandboxServer):
        self.args, self.sandbox = args, sandbox
        self.lock = threading.Lock()
        self.results: dict[str, dict] = {}  # task id -> polls, downloads, noticed
        self.threads: list[threading.Thread] = []

    def watch(self, planned: PlannedJob, job) -> None:
        if not job.provider_task_id:
            return
        thread = threading.Thread(
            target=self._run,
            args=(job.provider_task_id, job.submitted_at.timestamp()),
            name=f"plain-{job.pk}",
            daemon=True,
        )
        self.threads.append(thread)
        thread.start()

    def _run(self, task_id: str, submitted: float) -> None:
        from jobs.providers.adapters import get_adapter

        result = {"polls": 0, "downloads": 0, "noticed": None}
        with requests.Session() as http:
            http.trust_env = False
            adapter = get_adapter(
                self.args.provider,
                base_url=self.sandbox.url,
                api_key=self.sandbox.config.api_key,
                session=http,
            )
            for k in range(1, 100_000):
                sleep_until(submitted + k * PLAIN_INTERVAL)
                result["polls"] += 1
                try:
                    status = adapter.status(task_id)
                except (ProviderError, requests.RequestException):
                    continue  # counted; asked again 5 s later, as such a client would
                if status.state == "completed":
                    result["noticed"] = time.time()
                    result["downloads"] += 1
                    try:
                        http.get(status.video_url, timeout=60).content  # noqa: B018
                    except requests.RequestException:
                        pass
                    break
                if status.state == "failed" or time.time() - submitted > self.args.timeout:
                    break
        with self.lock:
            self.results[task_id] = result

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=self.args.timeout + 60)


def split_runs(studio: RunResult, watcher: PlainWatcher, sandbox: SandboxServer):
    """The sandbox counted both clients' calls: give each its own."""
    plain_jobs, plain_calls = [], {"submit": 0, "status": 0, "download": 0, "other": 0}
    tasks = sandbox.tasks
    # Counted again now that the watcher is done (run_studio counted before).
    studio.calls = count_calls(sandbox, since=studio.calls_since)
    per_task = calls_by_task(sandbox)
    for job in studio.jobs:
        mine = watcher.results.get(job.task_id, {"polls": 0, "downloads": 0, "noticed": None})
        polls, downloads = per_task.get(job.task_id, (0, 0))
        job.polls = polls - mine["polls"]
        job.downloads = downloads - mine["downloads"]
        plain_calls["submit"] += 1  # it would have submitted the job itself
        plain_calls["status"] += mine["polls"]
        plain_calls["download"] += mine["downloads"]
        plain_jobs.append(
            JobResult(
                task_id=job.task_id,
                completed=mine["noticed"] is not None,
                polls=mine["polls"],
                downloads=mine["downloads"],
                noticed=mine["noticed"],
                seen=mine["noticed"],
                **provider_fields(tasks.get(job.task_id)),
            )
        )
    for kind in ("status", "download"):
        studio.calls[kind] -= plain_calls[kind]
    plain = RunResult("plain 5 s poller (same tasks)", plain_jobs, plain_calls, studio.wall)
    return studio, plain


def add_history(args, plan: list[PlannedJob]) -> None:
    """Earlier finished jobs of the same provider, model and resolution, their
    render times drawn from the same clock (another seed): what a studio that
    has been running has learnt. Then the learnt row is written once."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from jobs.models import Job, JobState
    from jobs.pipeline.render_times import render_times_learn
    from jobs.providers import catalogue

    if args.history <= 0:
        return
    owner = get_user_model().objects.create_user("history", "history@example.com", PASSWORD)
    clock = realistic_clock(args, seed_offset=1000)
    rng = random.Random(args.seed + 1000)
    model = catalogue.model_for(args.provider, "dialog")
    now = timezone.now()
    rows = []
    for n in range(args.history):
        seconds = round(rng.uniform(*args.seconds), 2)
        draw = clock.draw(n)
        took = draw.queue_wait + max(0.5, draw.processing(seconds=seconds, rtf=args.rtf))
        when = now - timedelta(hours=1, seconds=(args.history - n) * 30)
        rows.append(
            Job(
                owner=owner,
                mode="dialog",
                provider=args.provider,
                provider_model=model,
                resolution=args.resolution,
                state=JobState.COMPLETED,
                input_seconds=seconds,
                submitted_at=when,
                provider_seconds=took,
                finished_at=when + timedelta(seconds=took + 1),
                shared=False,
            )
        )
    Job.objects.bulk_create(rows)
    render_times_learn(rows[-1])


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def lower_bound(args, plan: list[PlannedJob], *, overheads: list[float], target: float):
    """The fewest status requests per job that give p95 "finished -> seen" <=
    `target`, for a poller that knows each job's render-time distribution
    exactly (the clock's, sampled) and then shows it with the studio's own
    measured overhead (archive + page: `overheads`, drawn at random).

    The family searched: per job, a first poll at its quantile a, then evenly
    at most d apart up to its quantile b, then every 30 s; a, b, d on a grid.
    Returns (status requests per job, (a, b, d)) or (None, None)."""
    clock = realistic_clock(args, seed_offset=5000)
    rng = random.Random(args.seed + 5000)
    samples_per_job = 100
    jobs = []
    n = 0
    for job in plan:
        finishes = []
        for _ in range(samples_per_job):
            draw = clock.draw(n)
            n += 1
            finishes.append(
                draw.queue_wait + max(0.5, draw.processing(seconds=job.seconds, rtf=args.rtf))
            )
        ordered = sorted(finishes)
        jobs.append((finishes, ordered, [rng.choice(overheads) for _ in finishes]))
    best = (None, None)
    tail = 30.0

    def q(ordered, p):
        return ordered[min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))]

    for a in (0.0, 0.01, 0.02, 0.03, 0.05):
        for b in (0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0):
            for d in [x / 4 for x in range(2, 81)]:  # 0.5 s to 20 s
                polls_total, lags = 0, []
                for finishes, ordered, over in jobs:
                    lo, hi = q(ordered, a), q(ordered, b)
                    steps = max(1, math.ceil((hi - lo) / d)) if hi > lo else 0
                    step = (hi - lo) / steps if steps else 0.0
                    for x, extra in zip(finishes, over, strict=True):
                        if x <= lo:
                            polls, seen = 1, lo
                        elif x <= hi:
                            k = math.ceil((x - lo) / step - 1e-12)
                            polls, seen = 1 + k, lo + k * step
                        else:
                            k = math.ceil((x - hi) / tail)
                            polls, seen = 1 + steps + k, hi + k * tail
                        polls_total += polls
                        lags.append(seen - x + extra)
                if nearest_rank(lags, 0.95) <= target:
                    mean = polls_total / (len(jobs) * samples_per_job)
                    if best[0] is None or mean < best[0]:
                        best = (mean, (a, b, d))
    return best


def print_side_by_side(args, studio: RunResult, plain: RunResult, plan) -> None:
    def per_job(run):
        done = [j for j in run.jobs if j.completed]
        total = run.calls["submit"] + run.calls["status"] + run.calls["download"]
        return total / max(1, len(done)), done

    studio_calls, studio_done = per_job(studio)
    plain_calls, plain_done = per_job(plain)
    studio_lag = [gap(j.seen, j.provider_done) for j in studio_done]
    studio_lag = [x for x in studio_lag if x is not None]
    plain_lag = [x for x in (gap(j.seen, j.provider_done) for j in plain_done) if x is not None]
    detect = [x for x in (gap(j.noticed, j.provider_done) for j in studio_done) if x is not None]
    overheads = [x for x in (gap(j.seen, j.noticed) for j in studio_done) if x is not None]
    if not (studio_lag and plain_lag and overheads):
        print("\nside by side: not enough completed jobs to compare")
        return
    plain_p95 = p95(plain_lag)
    started = time.perf_counter()
    bound_polls, shape = lower_bound(args, plan, overheads=overheads, target=plain_p95)
    # The same search for the detection the studio reached (finished -> poll saw
    # it, no archive or page): how close its schedule comes to the fewest calls.
    seen_polls, seen_shape = lower_bound(args, plan, overheads=[0.0], target=p95(detect))
    took = time.perf_counter() - started
    print("\n== side by side, the same tasks")
    print(
        f"studio: {studio_calls:.2f} calls/job, finished -> seen median "
        f"{statistics.median(studio_lag):.2f} s, p95 {p95(studio_lag):.2f} s "
        f"(of which finished -> poll noticed: median {statistics.median(detect):.2f} s, "
        f"p95 {p95(detect):.2f} s)"
    )
    print(
        f"plain 5 s poller: {plain_calls:.2f} calls/job, finished -> seen median "
        f"{statistics.median(plain_lag):.2f} s, p95 {plain_p95:.2f} s"
    )
    if bound_polls is None:
        print(
            "lower bound for the 5 s poller's p95 finished -> seen: none in the searched "
            "family reaches it with the studio's archive + page overhead (p95 of that "
            f"alone: {p95(overheads):.2f} s)"
        )
    else:
        a, b, d = shape
        print(
            f"lower bound for the 5 s poller's p95 finished -> seen (simulated): "
            f"{2 + bound_polls:.2f} calls/job ({bound_polls:.2f} status GETs: first at the "
            f"job's p{a * 100:g}, then <= {d:g} s apart to its p{b * 100:g}, then every 30 s), "
            f"with the studio's own archive + page overhead; studio / bound = "
            f"{studio_calls / (2 + bound_polls):.2f}"
        )
    # The bound: the fewest calls that reach the 5 s poller's p95
    # finished -> seen. Without it (no schedule reaches that p95 with the
    # studio's overhead), the bound for the studio's own detection stands in.
    bound_ratio, bound_name = float("nan"), "none reaches the 5 s poller's p95"
    if bound_polls is not None:
        bound_ratio = (2 + bound_polls) / plain_calls
        bound_name = f"studio / bound {studio_calls / (2 + bound_polls):.2f}"
    if seen_polls is not None:
        bound_calls = 2 + seen_polls  # a submit and a download cannot be saved
        if bound_polls is None:
            bound_ratio = bound_calls / plain_calls
            bound_name = (
                f"bound of the studio's own detection; studio / bound "
                f"{studio_calls / bound_calls:.2f}"
            )
        a, b, d = seen_shape
        print(
            f"lower bound for the studio's own p95 finished -> poll saw it ({p95(detect):.2f} s; "
            f"simulated, {took:.0f} s for both): {bound_calls:.2f} calls/job ({seen_polls:.2f} "
            f"status GETs: first at the job's p{a * 100:g}, then <= {d:g} s apart to its "
            f"p{b * 100:g}, then every 30 s); studio / bound = {studio_calls / bound_calls:.2f}"
        )
    print(
        f"SUMMARY realistic clock, rtf {args.rtf:g}, {args.resolution}, spread "
        f"{args.spread * 100:g}%"
        + (f", outliers {args.outliers * 100:g}%" if args.outliers else "")
        + (f", queue {args.queue_seconds:g} s" if args.queue_seconds else "")
        + (", webhooks" if args.webhooks else "")
        + f": calls ratio {studio_calls / plain_calls:.2f}, bound ratio {bound_ratio:.2f} "
        f"({bound_name}), "
        f"p95 finished→seen {p95(studio_lag):.1f} s (studio) vs {plain_p95:.1f} s (5 s poller)"
    )
    studio_less = [x for x in (less_download(j) for j in studio_done) if x is not None]
    if studio_less:
        print(
            f"SUMMARY studio finished→seen p50 {statistics.median(studio_lag):.2f} s, p95 "
            f"{p95(studio_lag):.2f} s; less the download p50 "
            f"{statistics.median(studio_less):.2f} s, p95 {p95(studio_less):.2f} s"
        )


def main_side_by_side(args) -> None:
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        media_dir = Path(tmp) / "media"
        media_dir.mkdir()
        plan, photo = plan_jobs(args, media_dir)
        api_key = secrets.token_urlsafe(24)
        sandbox = new_sandbox(args, api_key)
        httpd = studio_server()
        studio_url = f"http://127.0.0.1:{httpd.server_address[1]}"
        configure_django(args, data_dir=data_dir, studio_url=studio_url, sandbox=sandbox)
        from django.core.handlers.wsgi import WSGIHandler

        httpd.set_app(WSGIHandler())
        serve_in_thread(httpd, "studio-http")
        add_history(args, plan)
        lo, hi = args.seconds
        print(
            f"{args.jobs} dialog jobs ({args.provider}), {args.resolution}, {lo:g}-{hi:g} s of "
            f"audio each, one every ~{args.stagger:g} s; realistic clock: rtf {args.rtf:g}, "
            f"spread {args.spread:g}, queue {args.queue_seconds:g} s, outliers "
            f"{args.outliers:g}; {args.history} earlier jobs learnt"
            + ("; webhooks on" if args.webhooks else "")
        )
        watcher = PlainWatcher(args, sandbox)
        studio = run_studio(
            args, plan, photo, studio_url=studio_url, sandbox=sandbox, on_submitted=watcher.watch
        )
        watcher.join()
        studio, plain = split_runs(studio, watcher, sandbox)
        sandbox.stop()
        httpd.shutdown()
        httpd.server_close()
        print_run(studio)
        print_run(plain)
        print_side_by_side(args, studio, plain, plan)
        print("\nmachine:")
        for line in machine_info():
            print(f"  {line}")
        print(f"reproduce: {reproduce_command(args)}")


# --- Printing -------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def describe(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "n/a"
    return (
        f"median {statistics.median(present):5.2f} s   p95 {p95(present):5.2f} s   "
        f"min {min(present):5.2f} s   max {max(present):5.2f} s   (n={len(present)})"
    )


def gap(later: float | None, earlier: float | None) -> float | None:
    return later - earlier if later is not None and earlier is not None else None


def less_download(job: JobResult) -> float | None:
    """finished -> seen, less the archive's download: what the studio adds."""
    lag = gap(job.seen, job.provider_done)
    return lag - job.download_seconds if lag is not None and job.download_seconds else None


def print_steps(done: list[JobResult]) -> None:
    """The studio's path step by step, each from the step before (a step a
    job did not take, say no webhook, is left out of its row)."""

    def downloaded(j: JobResult) -> float | None:
        return j.archive_started + j.download_seconds if j.download_seconds else None

    steps = [
        ("provider completed -> webhook received", lambda j: gap(j.webhook, j.provider_done)),
        ("webhook received -> poll answered", lambda j: gap(j.noticed, j.webhook)),
        ("poll answered -> archive started", lambda j: gap(j.archive_started, j.noticed)),
        ("download (the archive's own)", lambda j: j.download_seconds),
        ("downloaded -> archived (probe, store, settle)", lambda j: gap(j.archived, downloaded(j))),
        ("archived -> page saw it", lambda j: gap(j.seen, j.archived)),
    ]
    print("  step by step:")
    for label, step in steps:
        print(f"    {label:<46} {describe([step(j) for j in done])}")


def print_run(run: RunResult) -> None:
    done = [j for j in run.jobs if j.completed]
    n = max(1, len(done))
    total = run.calls["submit"] + run.calls["status"] + run.calls["download"]
    print(f"\n== {run.name}: {len(done)}/{len(run.jobs)} jobs completed in {run.wall:.1f} s")
    print(
        f"provider calls per completed job: {total / n:.2f}  "
        f"(submits {run.calls['submit'] / n:.2f} + status GETs {run.calls['status'] / n:.2f} "
        f"+ output downloads {run.calls['download'] / n:.2f}; total {total}"
        + (f"; other requests {run.calls['other']}" if run.calls["other"] else "")
        + ")"
    )
    polls = sorted(j.polls for j in done)
    if polls:
        print(
            f"status GETs per job: min {polls[0]}  median {statistics.median(polls):g}  "
            f"max {polls[-1]}"
        )
    print("provider processing (sandbox: submit to completed):")
    print(f"  {describe([j.provider_seconds for j in done])}")
    print("  of which fetching the inputs:")
    print(f"    {describe([j.provider_fetch for j in done])}")
    print("provider completed -> seen completed:")
    print(f"  {describe([gap(j.seen, j.provider_done) for j in done])}")
    unseen = sum(1 for j in done if j.seen is None)
    if unseen:
        print(f"  NOT SEEN: {unseen} completed job(s) never showed as completed (see notes)")
    if run.name == "studio":
        print("  less the archive's own download (the issue's measure):")
        print(f"  {describe([less_download(j) for j in done])}")
        print("  of which  provider completed -> poll noticed it (state archiving):")
        print(f"    {describe([gap(j.noticed, j.provider_done) for j in done])}")
        print("            poll noticed -> archived (state completed):")
        print(f"    {describe([gap(j.archived, j.noticed) for j in done])}")
        print("            archived -> the open page received the completed card:")
        print(f"    {describe([gap(j.seen, j.archived) for j in done])}")
        print_steps(done)
    for note in run.notes:
        print(f"note: {note}")


# --- Main -----------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    if args.side_by_side:
        main_side_by_side(args)
        return
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        media_dir = Path(tmp) / "media"
        media_dir.mkdir()
        plan, photo = plan_jobs(args, media_dir)

        # The two servers first, so their free ports go into the environment
        # before Django reads it.
        api_key = secrets.token_urlsafe(24)
        sandbox = new_sandbox(args, api_key)
        httpd = studio_server()
        studio_url = f"http://127.0.0.1:{httpd.server_address[1]}"
        configure_django(args, data_dir=data_dir, studio_url=studio_url, sandbox=sandbox)
        from django.core.handlers.wsgi import WSGIHandler

        httpd.set_app(WSGIHandler())
        serve_in_thread(httpd, "studio-http")

        lo, hi = args.seconds
        print(
            f"{args.jobs} dialog jobs, {args.resolution}, {lo:g}-{hi:g} s of audio each, "
            f"one every ~{args.stagger:g} s; sandbox rtf {args.rtf:g}; cluster: {args.cluster}"
            + (f"; +{args.download_delay:g} s per archive download" if args.download_delay else "")
        )
        studio = run_studio(args, plan, photo, studio_url=studio_url, sandbox=sandbox)
        sandbox.stop()
        httpd.shutdown()
        httpd.server_close()
        plain = run_plain(args, plan, photo, media_dir=media_dir, api_key=api_key)

        print_run(studio)
        print_run(plain)
        print("\nmachine:")
        for line in machine_info():
            print(f"  {line}")
        print(f"reproduce: {reproduce_command(args)}")


if __name__ == "__main__":
    main()
