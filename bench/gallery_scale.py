"""The gallery and the Studio page over a large database: N jobs (100,000 by
default) by a team of members, each page timed in-process, with the number of
queries it makes and the plan of each query on the jobs.

    .venv/bin/python bench/gallery_scale.py [--jobs 100000] [--requests 30]
    .venv/bin/python bench/gallery_scale.py --database-url postgres://postgres@127.0.0.1:5432/lipsync_bench

Prints, for each request below: median, p95, min and max response time over
--requests timed requests (after --warmups untimed ones), the response's size
and number of items, and the queries it made; the query count again with a
page four times larger (--big-page), to show it does not grow with the page;
then EXPLAIN QUERY PLAN (SQLite) or EXPLAIN ANALYZE (PostgreSQL) for every
query on the jobs and their inputs; machine info and the exact command.

The requests, all as one signed-in member (not staff, so the gallery's
"shared, or mine" condition applies), through django.test.Client in this
process (no HTTP server; no template instrumentation, so rendering costs what
it does in production):

- the gallery, first page: GET /gallery/;
- the gallery, a deep page (--deep-page, default 40) as the "load more"
  sentinel asks for it: GET /gallery/?before=<cursor> with HX-Request;
- a filtered gallery: kind + provider + resolution + a 90-day date range + a
  search word (GET /gallery/?q=happily&mode=dialog&provider=joypix&...);
- a search that matches nothing (GET /gallery/?q=flamingo): the worst case,
  every visible job's prompt is read;
- the Studio page: GET / (the form, the member's 24 newest cards, balances);
  then the same for another member, who has no live job (so "any live job?"
  finds none and its query reads further);
- a card update, as the Studio page's htmx poll sends it:
  GET /studio/cards/?since=<epoch ms> with HX-Request, answered with the 3
  cards that changed since (two processing jobs polled, one archiving). Its
  "bigger" count asks since a week ago (every card changed in a week);
- the Studio's history: a deep page of the member's jobs as "Load older"
  asks for it (GET /?before=<cursor> with HX-Target: load-older; page
  --deep-page, or the last), and the column filtered by state, provider and
  source (GET /?jobs-state=failed&jobs-provider=joypix&jobs-source=studio
  with HX-Target: job-list);
- a job's page: GET /jobs/<id>/ for one of the member's completed jobs (given
  its hold and capture in the ledger), and the live part of a processing
  job's page as its 2 s poll asks for it (HX-Target: job-live).

What runs, all in this process:

- a fresh temporary DATA_DIR (SQLite by default; migrated, static files
  collected, so pages render with the production static storage);
  --database-url runs against PostgreSQL instead: the script creates that
  database (and refuses one that already exists), and drops it at the end
  (--keep keeps it, and the DATA_DIR, for inspection);
- the fill: 2 staff and --members members (default 20) with bulk_create, then
  N jobs in batches (--batch), each with the JobInput rows its kind has
  (photo, audio(s), or video + audio and sometimes a mask), file names only (no
  files: the pages only read names). Kinds, providers, resolutions and states
  follow a fixed mix (see MIX below); finished_at is spread over a year;
  inputs older than INPUT_RETENTION_DAYS are purged as retention would; 85 %
  of finished videos have a poster; 90 % are shared; 1.5 % of jobs are
  deleted. The measured member owns ~1/20 of the jobs and the only live ones
  (2 processing, 1 archiving, 2 queued), and studio and API credits
  (jobs.ledger.credits_grant). PostgreSQL is ANALYZEd after the fill (as
  autovacuum would do shortly after); SQLite is not (the studio never runs
  ANALYZE, so its planner works without statistics, as here).

Timed requests run without query capture (capturing costs time); the query
counts come from --count-runs further requests under CaptureQueriesContext
(min-max shown when they differ: a processing card's rate lookup,
jobs.providers.routing.sandbox_rtf, is cached for 5 s per process, so a
request now and then makes one query more).

A script, not a test: it asserts nothing; it prints what it saw.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import shlex
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # jobs, lipsync_site

from bench.django_env import django_start  # noqa: E402
from bench.machine import machine_info  # noqa: E402

# The fill's mix: (value, weight).
MIX = {
    "mode": (("dialog", 35), ("talking_photo", 45), ("video_dub", 20)),
    # JoyPix only makes dialogs; lipsync.studio makes all three kinds.
    "dialog_provider": (("joypix", 60), ("lipsync_studio", 40)),
    "resolution": (("480p", 60), ("720p", 40)),
}
FAILED_SHARE = 0.08
DELETED_SHARE = 0.015
SHARED_SHARE = 0.90
POSTER_SHARE = 0.85
NO_PROMPT_SHARE = 0.15
MASK_SHARE = 0.2
DAYS = 365
# Words for the prompts: 20 adverbs (each in ~5 % of prompts), expressions, poses.
ADVERBS = (
    "happily calmly softly loudly slowly quickly warmly sadly excitedly gently seriously "
    "playfully nervously proudly angrily quietly confidently thoughtfully cheerfully "
    "dramatically"
).split()
EXPRESSIONS = (
    "cheerful neutral surprised tired friendly stern curious relaxed worried amused focused dreamy"
).split()
POSES = (
    "nodding",
    "a slight head tilt",
    "looking left",
    "looking right",
    "leaning forward",
    "a slight smile",
    "raised eyebrows",
    "blinking often",
    "hand gestures",
    "shrugging",
)
ERRORS = (
    "The provider could not find a face in the photo. Nothing was charged.",
    "The provider did not finish the job in time. Nothing was charged.",
    "Cancelled before it was sent. Credits released.",
    "The provider's video could not be read (no video stream). Nothing was charged.",
)
SEARCH_WORD = "happily"
NO_MATCH_WORD = "flamingo"  # in no prompt
CREDITS_PER_UNIT = {"480p": 20, "720p": 35}
USD_PER_UNIT = {"480p": "0.0500", "720p": "0.0900"}
SIZES = {"480p": (854, 480), "720p": (1280, 720)}


# --- Arguments ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring (the top of this file) for what runs.",
    )
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs to fill (default 100000)")
    parser.add_argument("--members", type=int, default=20, help="members, besides 2 staff (20)")
    parser.add_argument(
        "--requests", type=int, default=30, help="timed requests per page (default 30)"
    )
    parser.add_argument(
        "--warmups", type=int, default=3, help="untimed requests before them (default 3)"
    )
    parser.add_argument(
        "--count-runs",
        type=int,
        default=3,
        help="requests per page whose queries are counted (default 3)",
    )
    parser.add_argument(
        "--big-page",
        type=int,
        default=96,
        help="the larger page size for the second query count (default 96; the views show 24)",
    )
    parser.add_argument(
        "--deep-page",
        type=int,
        default=40,
        help="which page of the gallery the 'load more' request asks for (default 40)",
    )
    parser.add_argument("--batch", type=int, default=5000, help="jobs per bulk_create (5000)")
    parser.add_argument(
        "--database-url",
        default="",
        help="run against PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/lipsync_bench; "
        "the database is created (it must not exist) and dropped at the end "
        "(default: SQLite in the temporary DATA_DIR)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fill (default 1)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary DATA_DIR (with SQLite, the database) and, with "
        "--database-url, the PostgreSQL database, for inspection; remove them when done",
    )
    args = parser.parse_args()
    if args.jobs < 100 or args.members < 2:
        parser.error("--jobs must be >= 100 and --members >= 2")
    if args.requests < 1 or args.warmups < 0 or args.count_runs < 1 or args.batch < 1:
        parser.error("--requests, --count-runs and --batch must be >= 1, --warmups >= 0")
    if args.database_url:
        parts = urlsplit(args.database_url)
        if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
            parser.error("--database-url must be postgres://user@host:port/dbname")
    return args


def reproduce_command(args: argparse.Namespace) -> str:
    parts = [
        ".venv/bin/python",
        "bench/gallery_scale.py",
        f"--jobs={args.jobs}",
        f"--members={args.members}",
        f"--requests={args.requests}",
        f"--warmups={args.warmups}",
        f"--count-runs={args.count_runs}",
        f"--big-page={args.big_page}",
        f"--deep-page={args.deep_page}",
        f"--batch={args.batch}",
        f"--seed={args.seed}",
    ]
    if args.database_url:
        parts.append(f"--database-url={args.database_url}")
    return shlex.join(parts)


# --- The database (PostgreSQL: created and dropped here) ------------------------------------


def _pg_admin(url: str):
    """A connection to the server's `postgres` database, and the bench database's name."""
    import psycopg

    parts = urlsplit(url)
    name = unquote(parts.path.strip("/"))
    conn = psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        dbname="postgres",
        autocommit=True,
    )
    return conn, name


def pg_create(url: str) -> None:
    from psycopg import sql

    conn, name = _pg_admin(url)
    with conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            sys.exit(
                f"database {name!r} already exists; this script only uses a database it "
                "creates (drop it, or name another)"
            )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def pg_drop(url: str) -> None:
    from psycopg import sql

    conn, name = _pg_admin(url)
    with conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def configure_django(args, *, data_dir: Path) -> float:
    """Django on `data_dir` (or --database-url); returns the seconds migrate took."""
    return django_start(
        data_dir=data_dir,
        database_url=args.database_url,
        # django.test.Client sends Host: testserver.
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
    )


# --- The fill -------------------------------------------------------------------------------


@dataclass
class Fill:
    member: object = None
    other: object = None  # a member with no live job
    page_time: datetime | None = None  # when the simulated Studio page was rendered
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def pick(rng: random.Random, choices) -> str:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights)[0]


def prompt_for(rng: random.Random) -> str:
    if rng.random() < NO_PROMPT_SHARE:
        return ""
    text = f"speaks {rng.choice(ADVERBS)}, with {rng.choice(EXPRESSIONS)} expressions"
    for _ in range(rng.choice((0, 1, 1, 2))):
        text += f", {rng.choice(POSES)}"
    if rng.random() < 0.3:
        text += f", then {rng.choice(ADVERBS)}"
    return text


@contextmanager
def stamps_as_given(model):
    """bulk_create with our own created_at/updated_at (auto_now would set them to now)."""
    fields = [model._meta.get_field("created_at"), model._meta.get_field("updated_at")]
    saved = [(f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, (auto_now, auto_now_add) in zip(fields, saved, strict=True):
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def make_users(args, rng: random.Random):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    user_model = get_user_model()
    first = "Ada Ben Cleo Dev Ema Finn Gus Hana Ivo Jun Kai Lea Max Nia Oto Pia Rex Sia Tom Uma"
    last = "Reyes Novak Okafor Lind Brandt Sato Moreau Ivanova Costa Haddad"
    firsts, lasts = first.split(), last.split()
    password = make_password(None)  # unusable: the bench signs in with force_login
    users = [
        user_model(
            username=f"member{i + 1:02d}",
            first_name=firsts[i % len(firsts)],
            last_name=lasts[i % len(lasts)],
            password=password,
        )
        for i in range(args.members)
    ]
    users += [
        user_model(username=f"staff{i + 1}", is_staff=True, password=password) for i in range(2)
    ]
    users = user_model.objects.bulk_create(users)
    # The measured member has an ordinary share; the others vary.
    weights = [1.0, 1.0] + [rng.uniform(0.4, 1.6) for _ in range(args.members - 2)] + [0.3, 0.3]
    return users, weights


def finished_job(rng, *, index: int, owner, finished: datetime, now: datetime, purge_days: int):
    """A completed or failed job, and its inputs' (role, has picture) list."""
    from jobs.models import Job
    from jobs.providers import catalogue

    mode = pick(rng, MIX["mode"])
    provider = pick(rng, MIX["dialog_provider"]) if mode == "dialog" else "lipsync_studio"
    resolution = pick(rng, MIX["resolution"])
    seconds = round(rng.uniform(3, 60), 2)
    units = math.ceil(seconds / 5)
    rtf = (15 if resolution == "480p" else 25) * rng.uniform(0.8, 1.3)
    submitted = finished - timedelta(seconds=seconds * rtf + rng.uniform(2, 20))
    created = submitted - timedelta(seconds=rng.uniform(0.2, 3))
    failed = rng.random() < FAILED_SHARE
    deleted = rng.random() < DELETED_SHARE
    stamp = f"{finished:%Y/%m}"
    job = Job(
        owner=owner,
        mode=mode,
        provider=provider,
        provider_model=catalogue.model_for(provider, mode),
        resolution=resolution,
        prompt=prompt_for(rng),
        seed=rng.choice((-1, -1, -1, rng.randrange(1, 2**31))),
        shared=rng.random() < SHARED_SHARE,
        state="failed" if failed else "completed",
        error=rng.choice(ERRORS) if failed else "",
        provider_task_id=f"task-{index:08d}",
        input_seconds=seconds,
        unit_seconds=5,
        credits_per_unit=CREDITS_PER_UNIT[resolution],
        usd_per_unit=USD_PER_UNIT[resolution],
        credits_held=units * CREDITS_PER_UNIT[resolution],
        credits_charged=None if failed else units * CREDITS_PER_UNIT[resolution],
        submit_attempts=1,
        poll_count=rng.randint(2, 4),
        archive_attempts=0 if failed else 1,
        created_at=created,
        updated_at=finished,
        state_changed_at=finished,
        submitted_at=submitted,
        finished_at=finished,
    )
    if not failed:
        width, height = SIZES[resolution]
        job.output = f"outputs/{stamp}/job-{index}.mp4"
        job.output_seconds = round(seconds + rng.uniform(0, 0.2), 2)
        job.output_width, job.output_height = width, height
        job.provider_completed_at = finished - timedelta(seconds=rng.uniform(1, 12))
        job.provider_expires_at = job.provider_completed_at + timedelta(hours=72)
        job.archived_at = finished
        if rng.random() < POSTER_SHARE:
            job.poster = f"posters/{stamp}/job-{index}.webp"
    purged = purge_days and finished < now - timedelta(days=purge_days)
    if purged:
        job.inputs_purged_at = finished + timedelta(days=purge_days, minutes=rng.uniform(1, 60))
    if deleted:
        job.deleted_at = finished + timedelta(days=rng.uniform(0, 20))
        job.deleted_at = min(job.deleted_at, now - timedelta(minutes=5))
        job.updated_at = job.deleted_at
        job.output = job.poster = ""
    files_gone = bool(purged or deleted)
    return job, files_gone


def live_jobs(*, owner, now: datetime):
    """The measured member's jobs still under way: the newest ones."""
    from jobs.models import Job
    from jobs.providers import catalogue

    jobs = []
    plan = [
        # (state, created before the page, updated after it)
        ("queued", 40, None),
        ("queued", 30, None),
        ("processing", 120, 1),
        ("processing", 90, 1),
        ("archiving", 200, 1),
    ]
    for i, (state, ago, after) in enumerate(plan):
        created = now - timedelta(seconds=ago)
        job = Job(
            owner=owner,
            mode="talking_photo",
            provider="lipsync_studio",
            provider_model=catalogue.model_for("lipsync_studio", "talking_photo"),
            resolution="480p",
            prompt=f"speaks {SEARCH_WORD}, with cheerful expressions",
            state=state,
            input_seconds=8.0 + i,
            unit_seconds=5,
            credits_per_unit=20,
            usd_per_unit="0.0500",
            credits_held=40,
            created_at=created,
            updated_at=now + timedelta(seconds=after) if after else created,
            state_changed_at=created,
        )
        if state != "queued":
            job.submit_attempts = 1
            job.provider_task_id = f"task-live-{i}"
            job.submitted_at = created + timedelta(seconds=1)
            job.next_poll_at = now + timedelta(seconds=30)
        if state == "archiving":
            # Migration 0013's constraint: an archiving job has its output's address.
            job.output_url = f"https://provider.example/outputs/task-live-{i}.mp4"
            job.provider_completed_at = now - timedelta(seconds=5)
            job.provider_expires_at = job.provider_completed_at + timedelta(hours=72)
        jobs.append(job)
    return jobs


def inputs_for(job, *, index: int, files_gone: bool, rng: random.Random):
    from jobs.models import JobInput

    roles = {
        "dialog": ("image", "left_audio", "right_audio"),
        "talking_photo": ("image", "audio"),
        "video_dub": ("video", "audio") + (("mask",) if rng.random() < MASK_SHARE else ()),
    }[job.mode]
    stamp = f"{job.created_at:%Y/%m}"
    found = []
    for role in roles:
        picture = role in ("image", "video", "mask")
        ext = {"image": "jpg", "video": "mp4", "mask": "png"}.get(role, "mp3")
        kind = {"image": "image/jpeg", "video": "video/mp4", "mask": "image/png"}.get(
            role, "audio/mpeg"
        )
        inp = JobInput(
            job=job,
            role=role,
            file="" if files_gone else f"inputs/{stamp}/{index}-{role}.{ext}",
            original_name=f"{role}-{index}.{ext}",
            content_type=kind,
            size=rng.randint(40_000, 8_000_000),
            duration=None if role in ("image", "mask") else job.input_seconds,
            width=1024 if picture else None,
            height=768 if picture else None,
            thumbnail=(
                f"thumbs/{stamp}/{index}-{role}.webp"
                if role in ("image", "video") and not files_gone
                else ""
            ),
        )
        found.append(inp)
    return found


def fill_database(args) -> Fill:
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from jobs.credits.ledger import credits_grant
    from jobs.models import Job, JobInput, Pool

    rng = random.Random(args.seed)
    result = Fill()
    now = timezone.now().replace(microsecond=0)
    result.page_time = now

    started = time.perf_counter()
    users, weights = make_users(args, rng)
    member = users[0]
    result.member = member
    result.other = users[1]
    result.seconds["users"] = time.perf_counter() - started

    # The terminal jobs' finish times, oldest first, so ids follow time as they
    # do in a real database. None within 10 minutes of the page: the card
    # update must see only the live jobs change.
    n_live = 5
    moments = sorted(
        now - timedelta(minutes=10) - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        for _ in range(args.jobs - n_live)
    )
    purge_days = settings.INPUT_RETENTION_DAYS
    counts = dict.fromkeys(("completed", "failed", "deleted", "shared", "poster", "inputs"), 0)
    started = time.perf_counter()
    with stamps_as_given(Job):
        for start in range(0, len(moments), args.batch):
            chunk = moments[start : start + args.batch]
            jobs, gone = [], []
            for offset, finished in enumerate(chunk):
                owner = rng.choices(users, weights)[0]
                job, files_gone = finished_job(
                    rng,
                    index=start + offset,
                    owner=owner,
                    finished=finished,
                    now=now,
                    purge_days=purge_days,
                )
                jobs.append(job)
                gone.append(files_gone)
            with transaction.atomic():
                Job.objects.bulk_create(jobs)
                inputs = []
                for offset, (job, files_gone) in enumerate(zip(jobs, gone, strict=True)):
                    inputs += inputs_for(job, index=start + offset, files_gone=files_gone, rng=rng)
                JobInput.objects.bulk_create(inputs)
            for job in jobs:
                counts[job.state] += 1
                counts["deleted"] += job.deleted_at is not None
                counts["shared"] += job.shared
                counts["poster"] += bool(job.poster)
            counts["inputs"] += len(inputs)
        live = live_jobs(owner=member, now=now)
        with transaction.atomic():
            Job.objects.bulk_create(live)
            inputs = []
            for i, job in enumerate(live):
                inputs += inputs_for(job, index=args.jobs + i, files_gone=False, rng=rng)
            JobInput.objects.bulk_create(inputs)
            counts["inputs"] += len(inputs)
    counts["live"] = len(live)
    result.seconds["jobs and inputs"] = time.perf_counter() - started

    started = time.perf_counter()
    # A third of the member's failed jobs were tried again: their next job says so.
    mine = list(Job.objects.filter(owner=member).order_by("created_at").values_list("pk", "state"))
    retries = []
    for (pk, state), (next_pk, _next_state) in zip(mine, mine[1:], strict=False):
        if state == "failed" and rng.random() < 1 / 3:
            retries.append(Job(pk=next_pk, retried_from_id=pk))
    Job.objects.bulk_update(retries, ["retried_from"], batch_size=500)
    counts["retries"] = len(retries)
    for pool, amount in ((Pool.STUDIO, 250_000), (Pool.API, 50_000)):
        credits_grant(
            user=member, pool=pool, amount=amount, key=f"bench-grant-{pool}", reason="Bench"
        )
    result.seconds["retries and credits"] = time.perf_counter() - started

    if connection.vendor == "postgresql":
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        result.seconds["ANALYZE"] = time.perf_counter() - started
    counts["member jobs"] = len(mine)
    counts["other jobs"] = Job.objects.filter(owner=result.other).count()
    counts["users"] = len(users)
    result.counts = counts
    return result


# --- Requests -------------------------------------------------------------------------------


@dataclass
class Probe:
    name: str
    path: str
    params: dict[str, str]
    htmx: bool = False
    item_marker: str = 'class="card gallery-item"'
    # The second query count: a larger page, or (cards) a wider `since`.
    bigger: dict[str, str] | None = None
    bigger_note: str = ""
    # "member": the measured member; "other": a member with no live job.
    viewer: str = "member"
    # HX-Target, for views that answer a part by the element it replaces.
    target: str = ""


@dataclass
class Measured:
    probe: Probe
    status: int = 0
    items: int = 0
    kib: float = 0.0
    times: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    big_queries: list[int] = field(default_factory=list)
    big_items: int = 0
    captured: list[dict] = field(default_factory=list)


@contextmanager
def page_size(size: int | None):
    """The gallery's and the Studio page's page size, for the second count.
    The views take no size parameter: this sets the two defaults they use."""
    from jobs.gallery import services as gallery
    from jobs.studio import history

    if size is None:
        yield
        return
    saved = dict(gallery.gallery_page.__kwdefaults__), dict(history.history_page.__kwdefaults__)
    gallery.gallery_page.__kwdefaults__ = saved[0] | {"size": size}
    history.history_page.__kwdefaults__ = saved[1] | {"size": size}
    try:
        yield
    finally:
        gallery.gallery_page.__kwdefaults__, history.history_page.__kwdefaults__ = saved


def job_page_probes(args, fill: Fill) -> list[Probe]:
    """The Studio's history (a deep "Load older" page, a filtered column) and
    a job's page (whole, and its live part as its poll asks for it)."""
    from jobs.credits.ledger import credits_capture, credits_hold
    from jobs.models import Job
    from jobs.studio.history import PAGE_SIZE, Cursor

    member = fill.member
    mine = Job.objects.filter(owner=member, deleted_at__isnull=True).order_by("-created_at", "-id")
    total = mine.count()
    page = max(2, min(args.deep_page, math.ceil(total / PAGE_SIZE)))
    last = mine[min(total - 1, (page - 1) * PAGE_SIZE - 1)]
    cursor = str(Cursor(last.created_at, last.pk))
    # A completed job of the member's with its hold and capture in the ledger.
    done = mine.filter(state="completed").first()
    hold = credits_hold(
        user=member, pool="studio", amount=done.credits_held, key=f"job:{done.pk}:hold", job=done
    )
    credits_capture(hold=hold, amount=done.credits_charged, key=f"job:{done.pk}:capture")
    rendering = mine.filter(state="processing").first()
    big = {"__size__": str(args.big_page)}
    marker = 'class="card job-card'
    return [
        Probe(
            f"Studio, page {page} (load older)",
            "/",
            {"before": cursor},
            htmx=True,
            target="load-older",
            item_marker=marker,
            bigger=big,
        ),
        Probe(
            "Studio, filtered (failed, JoyPix, studio)",
            "/",
            {"jobs-state": "failed", "jobs-provider": "joypix", "jobs-source": "studio"},
            htmx=True,
            target="job-list",
            item_marker=marker,
            bigger=big,
        ),
        Probe(
            "job page (completed)",
            f"/jobs/{done.pk}/",
            {},
            item_marker='class="timeline-step timeline-step--done"',
        ),
        Probe(
            "job page, live part (htmx poll)",
            f"/jobs/{rendering.pk}/",
            {},
            htmx=True,
            target="job-live",
            item_marker='class="timeline-step timeline-step--done"',
        ),
    ]


def build_probes(args, fill: Fill) -> list[Probe]:
    from jobs.gallery.services import PAGE_SIZE, Cursor, GalleryFilters, gallery_jobs

    member = fill.member
    deep = gallery_jobs(viewer=member, filters=GalleryFilters())
    # A small fill may not reach --deep-page: then its last page.
    total = deep.count()
    page = max(2, min(args.deep_page, math.ceil(total / PAGE_SIZE)))
    last = deep[min(total - 1, (page - 1) * PAGE_SIZE - 1)]
    cursor = str(Cursor(last.finished_at, last.pk))
    today = fill.page_time.date()
    filtered = {
        "q": SEARCH_WORD,
        "mode": "dialog",
        "provider": "joypix",
        "resolution": "720p",
        "date_from": (today - timedelta(days=120)).isoformat(),
        "date_to": (today - timedelta(days=30)).isoformat(),
    }
    since = int(fill.page_time.timestamp() * 1000)
    week = int((fill.page_time - timedelta(days=7)).timestamp() * 1000)
    big = {"__size__": str(args.big_page)}
    return [
        Probe("gallery", "/gallery/", {}, bigger=big),
        Probe(
            f"gallery, page {page} (load more)",
            "/gallery/",
            {"before": cursor},
            htmx=True,
            bigger=big,
        ),
        Probe("filtered gallery", "/gallery/", filtered, bigger=big),
        Probe(f"search, no match ({NO_MATCH_WORD})", "/gallery/", {"q": NO_MATCH_WORD}),
        Probe("Studio page", "/", {}, item_marker='class="card job-card', bigger=big),
        Probe(
            "Studio page, no live job",
            "/",
            {},
            item_marker='class="card job-card',
            bigger=big,
            viewer="other",
        ),
        Probe(
            "card update (htmx poll)",
            "/studio/cards/",
            {"since": str(since)},
            htmx=True,
            item_marker='class="card job-card',
            bigger={"since": str(week)},
            bigger_note="since a week ago",
        ),
        *job_page_probes(args, fill),
    ]


def measure(args, probes: list[Probe], fill: Fill) -> list[Measured]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for viewer, user in (("member", fill.member), ("other", fill.other)):
        clients[viewer] = Client()
        clients[viewer].force_login(user)
    results = []
    for probe in probes:
        headers = {"HX-Request": "true"} if probe.htmx else {}
        if probe.target:
            headers["HX-Target"] = probe.target

        def get(params, *, probe=probe, headers=headers):
            return clients[probe.viewer].get(probe.path, params, headers=headers)

        result = Measured(probe)
        for _ in range(args.warmups):
            get(probe.params)
        for _ in range(args.requests):
            started = time.perf_counter()
            response = get(probe.params)
            result.times.append(time.perf_counter() - started)
        result.status = response.status_code
        body = response.content.decode()
        result.items = body.count(probe.item_marker)
        result.kib = len(response.content) / 1024
        for _ in range(args.count_runs):
            with CaptureQueriesContext(connection) as ctx:
                get(probe.params)
            result.queries.append(len(ctx.captured_queries))
            result.captured = ctx.captured_queries
        if probe.bigger is not None:
            size = int(probe.bigger["__size__"]) if "__size__" in probe.bigger else None
            params = probe.params | {k: v for k, v in probe.bigger.items() if k != "__size__"}
            with page_size(size):
                get(params)
                for _ in range(args.count_runs):
                    with CaptureQueriesContext(connection) as ctx:
                        response = get(params)
                    result.big_queries.append(len(ctx.captured_queries))
            result.big_items = response.content.decode().count(probe.item_marker)
        results.append(result)
    return results


# --- Plans ----------------------------------------------------------------------------------


JOB_TABLES = re.compile(r'FROM "jobs_job(input)?"')


def short_sql(sql: str) -> str:
    """The SQL with a long select list elided: the rest is what the plan depends on."""
    head, sep, rest = sql.partition(" FROM ")
    if sep and head.startswith("SELECT ") and len(head) > 60:
        return f"SELECT … FROM {rest}"
    return sql


def explain(sql: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            depth = {0: -1}
            lines = []
            for node, parent, _unused, detail in cursor.fetchall():
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            return lines
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}")
        return [row[0] for row in cursor.fetchall()]


def print_plans(results: list[Measured]) -> None:
    from django.db import connection

    what = "EXPLAIN QUERY PLAN" if connection.vendor == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF)"
    print(f"\n== Each request's queries, with the plan ({what}) of those on the jobs")
    seen = set()
    for result in results:
        print(f"\n-- {result.probe.name}: {len(result.captured)} queries")
        for n, query in enumerate(result.captured, 1):
            sql = query["sql"] or ""
            text = short_sql(sql)
            if not JOB_TABLES.search(sql) or text in seen:
                again = " (plan above)" if text in seen else ""
                print(f"  {n}. {text[:150]}{'…' if len(text) > 150 else ''}{again}")
                continue
            seen.add(text)
            print(f"  {n}. {text}")
            for line in explain(sql):
                print(f"       | {line}")


# --- Printing -------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def print_results(args, results: list[Measured]) -> None:
    print(
        f"\n== Requests: {args.requests} timed after {args.warmups} warm-ups; "
        f"queries counted over {args.count_runs} more"
    )
    header = (
        f"{'request':<34} {'status':>6} {'items':>5} {'KiB':>6} {'queries':>7}  "
        f"{'median':>8} {'p95':>8} {'min':>8} {'max':>8}   bigger: queries (items)"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ms = [t * 1000 for t in r.times]
        bigger = ""
        if r.big_queries:
            note = r.probe.bigger_note or f"page of {args.big_page}"
            bigger = f"{span(r.big_queries)} ({r.big_items} items, {note})"
        print(
            f"{r.probe.name:<34} {r.status:>6} {r.items:>5} {r.kib:>6.1f} {span(r.queries):>7}  "
            f"{statistics.median(ms):>6.1f}ms {p95(ms):>6.1f}ms {min(ms):>6.1f}ms "
            f"{max(ms):>6.1f}ms   {bigger}"
        )


def database_info() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (file in a temporary DATA_DIR)"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]} (local, database made for the run)"


def print_fill(args, fill: Fill, migrate_seconds: float) -> None:
    c = fill.counts
    total = sum(fill.seconds.values())
    print("== Fill")
    print(
        f"users: {c['users']} ({args.members} members, 2 staff); jobs: {args.jobs:,} "
        f"(completed {c['completed']:,}, failed {c['failed']:,}, live {c['live']}; "
        f"deleted {c['deleted']:,}; shared {c['shared']:,}; with a poster {c['poster']:,}); "
        f"inputs: {c['inputs']:,}"
    )
    print(
        f"measured member: {fill.member.username} (#{fill.member.pk}), {c['member jobs']:,} jobs, "
        f"{c['live']} of them live, {c['retries']} retries of failed ones; "
        f"{fill.other.username} (#{fill.other.pk}), {c['other jobs']:,} jobs, none live"
    )
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in fill.seconds.items())
    print(f"fill time: {total:.1f} s ({steps}); migrate before it: {migrate_seconds:.1f} s")


# --- Main -----------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    created = False
    try:
        with tempfile.TemporaryDirectory(prefix="lipsync-bench-", delete=not args.keep) as tmp:
            if args.database_url:
                pg_create(args.database_url)
                created = True
            migrate_seconds = configure_django(args, data_dir=Path(tmp) / "data")
            from django.db import connection

            print(
                f"{args.jobs:,} jobs by {args.members} members and 2 staff on {connection.vendor}; "
                f"{args.requests} timed requests per page"
            )
            fill = fill_database(args)
            print_fill(args, fill, migrate_seconds)
            probes = build_probes(args, fill)
            results = measure(args, probes, fill)
            print_results(args, results)
            print_plans(results)
            print("\nmachine:")
            for line in machine_info(database=database_info()):
                print(f"  {line}")
            print(f"reproduce: {reproduce_command(args)}")
            print(f"finished: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
            if args.keep:
                print(f"kept: {tmp} (remove it when done)")
            connection.close()
    finally:
        if created and args.keep:
            print(f"kept: the database of {args.database_url} (drop it when done)")
        elif created:
            from django.db import connections

            connections.close_all()
            pg_drop(args.database_url)


if __name__ == "__main__":
    main()
