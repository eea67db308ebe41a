"""Load in figures: the Studio's card update and the gallery under the run
command's own web server (gunicorn, gthread, 2 workers x 8 threads, from
jobs/management/commands/runstudio.py), driven from a second process over
loopback, each figure also as a ratio to a hello-world Django view measured in
the same run on the same server; then a large upload through the real form
with the web workers' memory, and video playback with HTTP Range.

    .venv/bin/python bench/load.py                                  # SQLite, local-memory cache
    .venv/bin/python bench/load.py \\
        --database-url postgres://postgres@127.0.0.1:5432/lipsync_load_bench \\
        --redis-url redis://127.0.0.1:6379/13                        # PostgreSQL + Redis

What runs:

- a fresh temporary DATA_DIR, migrated (SQLite there, or --database-url: a
  PostgreSQL database this script creates and drops; --redis-url: Redis as
  the cache, under a key prefix of this run's own, removed at the end);
- the fill: --members members (100), each with --jobs-per-member finished jobs
  (20, the gallery's mix from bench/gallery_scale.py, 90 % shared, with their
  input rows) and 3 live ones (2 processing, 1 queued) made a minute ago, two
  of which "changed" just now (their updated_at); credits for every member; a
  signed-in session per member; one completed job whose video is a real file
  of --video-mb (64) for the Range test;
- gunicorn with runstudio's exact command line (bound to a port the OS picks)
  and settings bench/load_site.py: the studio's settings and URLs plus two
  bench-only views, /bench/hello/ (HttpResponse) and /bench/hello-signed-in/
  (the same behind login_required: session and user loaded);
- this script again (--drive) as the client process: asyncio, raw HTTP/1.1
  with keep-alive, N clients each in a closed loop (a request as soon as the
  previous answer is read), each signed in as its own member.

Scenarios, at 20 and 100 clients (--clients), each --warmup s untimed then
--seconds s timed; req/s counts answers completed in the timed window, p95
is nearest-rank over their latencies:

- hello: GET /bench/hello/ (no session);
- hello signed in: GET /bench/hello-signed-in/;
- cards, nothing changed: GET /studio/cards/?since=...&newest=...&oldest=...
  with HX-Request, each client moving its cursor as the page does (from
  X-Cards-Since) and sending back the card ticket that the first (signed-in)
  answer and each later full one hand it (X-Cards-Ticket), as the page's
  poller does, so that its "nothing changed" loads no session. The shares of
  answers that were the stamp's empty "nothing changed", and of those that
  came by ticket, are printed: a real page asks every 2 s, so 1 in 15 of its
  asks is a full one (the stamp is trusted 30 s); a closed loop asks far more
  often, so its share of full answers is lower (see RESULTS.md for the mix);
- cards, something changed: the same with a cursor before the fill's last
  change, so every answer carries the member's 2 changed cards (and balances);
- gallery: GET /gallery/ (the whole first page).

Then, alone on the server:

- upload: one --upload-mb MiB video (default 499: just under the 500 MB
  limit) POSTed to /studio/uploads/video/?mode=video_dub as the Studio's
  form sends it (multipart, CSRF token), streamed by the client; the file is
  a short real MP4 followed by a 'free' box of zeros, so the server decodes
  it as it does any upload. RSS of the gunicorn master and each worker is
  sampled every 20 ms: before, peak during, and 1 s after;
- playback: --viewers (20) clients each asking the video in 1 MiB Range
  requests at random offsets (a browser seeking and buffering): MiB/s
  served, requests/s, p95 time to the first byte of the answer.

Not measured: TLS or a reverse proxy in front (nginx would serve media
itself); a browser's own work; the cluster (not started: nothing changes
during the run, except the upload).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # jobs, lipsync_site, bench

MIB = 1024 * 1024
SCENARIOS = ("hello", "hello_signed_in", "cards_nothing", "cards_changed", "gallery")
LABELS = {
    "hello": "hello world",
    "hello_signed_in": "hello world, signed in",
    "cards_nothing": "card update, nothing changed",
    "cards_changed": "card update, 2 cards changed",
    "gallery": "gallery, first page",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="postgres://… (created and dropped)")
    parser.add_argument("--redis-url", help="redis://… (cache; keys removed at the end)")
    parser.add_argument("--clients", default="20,100", help="concurrency levels")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds a round")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds first")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario")
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--jobs-per-member", type=int, default=20)
    parser.add_argument("--upload-mb", type=int, default=499, help="0: no upload test")
    parser.add_argument("--video-mb", type=int, default=64, help="the played video's size")
    parser.add_argument("--viewers", type=int, default=20, help="0: no playback test")
    parser.add_argument("--only", default="", help="comma-separated scenarios (default all)")
    parser.add_argument("--keep", action="store_true", help="keep DATA_DIR and the database")
    parser.add_argument("--drive", help=argparse.SUPPRESS)  # the client process: its plan
    return parser.parse_args(argv)


def reproduce_command(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python", "bench/load.py"]
    for name in ("database_url", "redis_url"):
        if getattr(args, name):
            parts.append(f"--{name.replace('_', '-')}={getattr(args, name)}")
    defaults = parse_args([])
    for name in (
        "clients",
        "seconds",
        "warmup",
        "rounds",
        "members",
        "jobs_per_member",
        "upload_mb",
        "video_mb",
        "viewers",
        "only",
    ):
        if getattr(args, name) != getattr(defaults, name):
            parts.append(f"--{name.replace('_', '-')}={getattr(args, name)}")
    return shlex.join(parts)


# --- the client process ------------------------------------------------------------------


class Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    def close(self):
        self.writer.close()


async def fetch(conn: Conn, head: bytes, body=None):
    """One request; (status, headers, body bytes read, seconds to first byte,
    seconds in all, keep-alive, body if small)."""
    started = time.perf_counter()
    conn.writer.write(head)
    if body is not None:
        async for chunk in body:
            conn.writer.write(chunk)
            await conn.writer.drain()
    await conn.writer.drain()
    raw = await conn.reader.readuntil(b"\r\n\r\n")
    first = time.perf_counter() - started
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    kept = b""
    if "content-length" in headers:
        size = int(headers["content-length"])
        left = size
        while left:
            chunk = await conn.reader.read(min(left, 256 * 1024))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", left)
            if len(kept) < 4096:
                kept += chunk[:4096]
            left -= len(chunk)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        size = 0
        while True:
            line = await conn.reader.readuntil(b"\r\n")
            length = int(line.split(b";")[0], 16)
            if length == 0:
                await conn.reader.readuntil(b"\r\n")
                break
            chunk = await conn.reader.readexactly(length + 2)
            kept += chunk[:4096] if len(kept) < 4096 else b""
            size += length
    else:
        data = await conn.reader.read()
        size, kept, keep = len(data), data[:4096], False
    return status, headers, size, first, time.perf_counter() - started, keep, kept


def request_head(port: int, path: str, *, cookie: str = "", extra: dict | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def run_clients(port: int, scenario: dict) -> dict:
    """Closed-loop clients for warmup + seconds; the timed window's figures."""
    loop_start = time.perf_counter()
    measure_from = loop_start + scenario["warmup"]
    stop_at = measure_from + scenario["seconds"]
    latencies: list[float] = []
    firsts: list[float] = []
    counts = {"done": 0, "bytes": 0, "errors": 0, "non_2xx": 0, "empty": 0, "by_ticket": 0}
    rng = random.Random(7)

    async def client(spec: dict) -> None:
        conn = None
        since = spec.get("since")
        ticket = ""  # the card ticket, as the page holds it (see follow below)
        while time.perf_counter() < stop_at:
            if conn is None:
                conn = Conn(*await asyncio.open_connection("127.0.0.1", port))
            path = spec["path"]
            if since is not None:
                path = path.replace("{since}", str(since))
            extra = dict(spec.get("headers", {}))
            if ticket:
                extra["X-Cards-Ticket"] = ticket
            if spec.get("range_of"):
                start = rng.randrange(0, spec["range_of"] - MIB)
                extra["Range"] = f"bytes={start}-{start + MIB - 1}"
            began = time.perf_counter()
            try:
                status, headers, size, first, took, keep, kept = await fetch(
                    conn, request_head(port, path, cookie=spec.get("cookie", ""), extra=extra)
                )
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                conn.close()
                conn = None
                if began >= measure_from:
                    counts["errors"] += 1
                continue
            if spec.get("follow") and "x-cards-since" in headers:
                since = headers["x-cards-since"]
                # Each signed-in answer renews the ticket; the page sends it back.
                ticket = headers.get("x-cards-ticket", ticket)
            ended = time.perf_counter()
            if began >= measure_from and ended <= stop_at:
                counts["done"] += 1
                counts["bytes"] += size
                counts["empty"] += size == 0
                # The ticket's way answers empty and renews no ticket.
                counts["by_ticket"] += size == 0 and "x-cards-ticket" not in headers
                if not 200 <= status < 300:
                    counts["non_2xx"] += 1
                    counts.setdefault("statuses", {}).setdefault(str(status), 0)
                    counts["statuses"][str(status)] += 1
                latencies.append(took)
                firsts.append(first)
            if not keep:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    await asyncio.gather(*(client(spec) for spec in scenario["clients"]))
    return {
        "name": scenario["name"],
        "concurrency": len(scenario["clients"]),
        "seconds": scenario["seconds"],
        "rps": counts["done"] / scenario["seconds"],
        "p50": _quantile(latencies, 0.50),
        "p95": _quantile(latencies, 0.95),
        "first_p95": _quantile(firsts, 0.95),
        "mib_s": counts["bytes"] / MIB / scenario["seconds"],
        "latencies": latencies,
        "firsts": firsts,
        **counts,
    }


async def upload(port: int, plan: dict) -> dict:
    """The Studio form's upload of one large video, streamed."""
    boundary = "----lipsyncbench" + os.urandom(8).hex()
    head_mp4 = Path(plan["mp4"]).read_bytes()
    pad = plan["size"] - len(head_mp4)
    free = (pad).to_bytes(4, "big") + b"free"  # the box's own 8 bytes count in its size
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="mode"\r\n\r\nvideo_dub\r\n'
        f"--{boundary}\r\nContent-Disposition: form-data; "
        f'name="video"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    trailer = f"\r\n--{boundary}--\r\n".encode()
    length = len(preamble) + len(head_mp4) + pad + len(trailer)

    async def body():
        yield preamble + head_mp4 + free
        zeros = bytes(MIB)
        left = pad - len(free)
        while left > 0:
            yield zeros[: min(MIB, left)]
            left -= MIB
        yield trailer

    head = (
        f"POST /studio/uploads/video/?mode=video_dub HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Cookie: {plan['cookie']}; csrftoken={plan['csrf']}\r\nX-CSRFToken: {plan['csrf']}\r\n"
        f"HX-Request: true\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    conn = Conn(*await asyncio.open_connection("127.0.0.1", port))
    status, _headers, _size, first, took, _keep, kept = await fetch(conn, head, body())
    conn.close()
    text = kept.decode("utf-8", "replace")
    return {
        "status": status,
        "bytes": length,
        "seconds": took,
        "answer_after_body": first,
        "staged": "upload-field--staged" in text,
        "refusal": " ".join(re.findall(r'class="field-error"[^>]*>([^<]*)<', text)),
    }


def drive(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    port = plan["port"]
    results = []
    if plan["phase"] == "load":
        for scenario in plan["scenarios"]:
            results.append(asyncio.run(run_clients(port, scenario)))
    elif plan["phase"] == "upload":
        results.append(asyncio.run(upload(port, plan["upload"])))
    print(json.dumps(results))


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


# --- the server side ---------------------------------------------------------------------


def fill(args, *, data_dir: Path) -> dict:
    """Members, jobs, sessions, credits; returns what the clients need."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from bench.gallery_scale import finished_job, inputs_for, stamps_as_given
    from jobs.credits.ledger import credits_grant
    from jobs.models import Job, JobInput
    from jobs.providers import catalogue

    rng = random.Random(42)
    now = timezone.now()
    user_model = get_user_model()
    password = make_password(None)
    users = user_model.objects.bulk_create(
        user_model(username=f"member{i + 1:03d}", first_name=f"M{i + 1}", password=password)
        for i in range(args.members)
    )
    jobs, index = [], 0
    changed_at = now - timedelta(seconds=1)
    for user in users:
        for _ in range(args.jobs_per_member):
            index += 1
            finished = now - timedelta(days=rng.uniform(1, 365))
            job, files_gone = finished_job(
                rng, index=index, owner=user, finished=finished, now=now, purge_days=30
            )
            jobs.append((job, files_gone, index))
        for i, state in enumerate(("processing", "processing", "queued")):
            index += 1
            created = now - timedelta(seconds=60 - i)
            job = Job(
                owner=user,
                mode="talking_photo",
                provider="lipsync_studio",
                provider_model=catalogue.model_for("lipsync_studio", "talking_photo"),
                resolution="480p",
                prompt="speaks calmly",
                state=state,
                input_seconds=8.0,
                unit_seconds=1,
                credits_per_unit=2,
                usd_per_unit="0.0200",
                credits_held=16,
                created_at=created,
                # Two of the three changed just now (the "something changed" answers).
                updated_at=changed_at if i < 2 else created,
                state_changed_at=created,
            )
            if state == "processing":
                job.submit_attempts = 1
                job.provider_task_id = f"task-live-{index}"
                job.submitted_at = created + timedelta(seconds=1)
                job.next_poll_at = now + timedelta(hours=1)
            jobs.append((job, False, index))
    with stamps_as_given(Job):
        made = Job.objects.bulk_create([job for job, _gone, _i in jobs], batch_size=500)
    JobInput.objects.bulk_create(
        [
            inp
            for job, (_j, gone, i) in zip(made, jobs, strict=True)
            for inp in inputs_for(job, index=i, files_gone=gone, rng=rng)
        ],
        batch_size=1000,
    )
    clients = []
    for user in users:
        credits_grant(user=user, pool="studio", amount=5000, key=f"grant:{user.pk}")
        client = Client()
        client.force_login(user)
        newest = list(
            Job.objects.filter(owner=user, deleted_at__isnull=True)
            .order_by("-created_at", "-id")
            .values_list("created_at", flat=True)[:24]
        )
        clients.append(
            {
                "cookie": f"sessionid={client.cookies['sessionid'].value}",
                "newest": int(newest[0].timestamp() * 1000),
                "oldest": int(newest[-1].timestamp() * 1000),
            }
        )
    # The played video: a real MP4 padded to --video-mb, owned by the first member.
    video = Path(settings.MEDIA_ROOT) / "outputs" / "bench" / "played.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    head = small_mp4(data_dir)
    with open(video, "wb") as fh:
        fh.write(head)
        pad = args.video_mb * MIB - len(head)
        fh.write(pad.to_bytes(4, "big") + b"free")
        fh.truncate(args.video_mb * MIB)
    played = made[0]
    Job.objects.filter(pk=played.pk).update(
        state="completed",
        output="outputs/bench/played.mp4",
        finished_at=now,
        credits_charged=None,
        deleted_at=None,
        error="",
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would soon after
    return {
        "clients": clients,
        "changed_ms": int(changed_at.timestamp() * 1000),
        "played": played.pk,
        "played_owner": 0,
        "video_bytes": args.video_mb * MIB,
        "jobs": len(made),
    }


def small_mp4(data_dir: Path) -> bytes:
    """A 3 s 640x360 H.264 + AAC clip (the tests' media factory)."""
    from tests.media_factory import make_video

    path = data_dir / "small.mp4"
    if not path.exists():
        make_video(path, 3.0)
    return path.read_bytes()


def start_gunicorn(data_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    from jobs.management.commands.runstudio import web_command

    log = data_dir / "gunicorn.log"
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "bench.load_site"}
    with open(log, "wb") as errors:
        proc = subprocess.Popen(
            web_command(bind="127.0.0.1:0"),
            env=env,
            stdout=subprocess.DEVNULL,  # the access log: written, as in production, then dropped
            stderr=errors,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    port = None
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
        if found and text.count("Booting worker") >= 2:
            port = int(found.group(1))
            break
        if proc.poll() is not None:
            sys.exit(f"gunicorn stopped:\n{text}")
        time.sleep(0.1)
    if port is None:
        proc.kill()
        sys.exit("gunicorn did not start within 60 s")
    return proc, port, log


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def web_pids(master: int) -> list[int]:
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry.name))
    return pids


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    """Each process's largest RSS while running, sampled every 20 ms."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: 0.0 for pid in pids}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_mib(pid))
            time.sleep(0.02)


def client_process(plan: dict, data_dir: Path) -> list[dict]:
    path = data_dir / f"plan-{plan['phase']}.json"
    path.write_text(json.dumps(plan))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--drive", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"the client process failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_scenarios(args, data: dict, port: int) -> list[dict]:
    wanted = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    levels = [int(c) for c in args.clients.split(",") if c]
    if max(levels) > len(data["clients"]):
        sys.exit(f"--members must be at least {max(levels)} (one member per client)")
    hx = {"HX-Request": "true"}
    scenarios = []
    for level in levels:
        members = data["clients"][:level]

        def cards(member, since, follow):
            query = f"since={{since}}&newest={member['newest']}&oldest={member['oldest']}"
            return {
                "path": f"/studio/cards/?{query}",
                "cookie": member["cookie"],
                "headers": hx,
                "since": since,
                "follow": follow,
            }

        by_name = {
            "hello": [{"path": "/bench/hello/"} for _ in members],
            "hello_signed_in": [
                {"path": "/bench/hello-signed-in/", "cookie": m["cookie"]} for m in members
            ],
            # A page's cursor: its first answer moves it, as htmx does.
            "cards_nothing": [cards(m, int(time.time() * 1000), True) for m in members],
            "cards_changed": [cards(m, data["changed_ms"] - 1000, False) for m in members],
            "gallery": [{"path": "/gallery/", "cookie": m["cookie"]} for m in members],
        }
        # Rounds: every scenario once per round, so a machine that gets
        # busier or quieter meanwhile weighs on all of them alike.
        for _round in range(args.rounds):
            for name in wanted:
                scenarios.append(
                    {
                        "name": name,
                        "clients": by_name[name],
                        "warmup": args.warmup,
                        "seconds": args.seconds,
                    }
                )
    return scenarios


def merged(results: list[dict]) -> list[dict]:
    """One result per scenario and level, over all its rounds."""
    found: dict[tuple, dict] = {}
    for r in results:
        key = (r["concurrency"], r["name"])
        into = found.setdefault(
            key,
            {
                "name": r["name"],
                "concurrency": r["concurrency"],
                "seconds": 0.0,
                "latencies": [],
                "firsts": [],
                "done": 0,
                "bytes": 0,
                "errors": 0,
                "non_2xx": 0,
                "empty": 0,
                "by_ticket": 0,
                "rounds": [],
            },
        )
        for name in ("seconds", "done", "bytes", "errors", "non_2xx", "empty", "by_ticket"):
            into[name] += r[name]
        into["latencies"] += r["latencies"]
        into["firsts"] += r["firsts"]
        into["rounds"].append(r["rps"])
        for status, count in r.get("statuses", {}).items():
            into.setdefault("statuses", {}).setdefault(status, 0)
            into["statuses"][status] += count
    for into in found.values():
        into["rps"] = into["done"] / into["seconds"]
        into["mib_s"] = into["bytes"] / MIB / into["seconds"]
        into["p50"] = _quantile(into["latencies"], 0.50)
        into["p95"] = _quantile(into["latencies"], 0.95)
        into["first_p95"] = _quantile(into["firsts"], 0.95)
    return list(found.values())


def print_load(results: list[dict]) -> None:
    print("\n## Requests (closed-loop clients; ratio = req/s ÷ hello world's at that level)\n")
    print(
        "| scenario | clients | req/s | ratio | req/s each round | p50 ms | p95 ms "
        "| errors / non-2xx | notes |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    hello: dict[int, list[float]] = {}
    for r in results:
        if r["name"] == "hello":
            hello.setdefault(r["concurrency"], []).append(r["rps"])
    for r in results:
        runs = hello.get(r["concurrency"])
        base = sum(runs) / len(runs) if runs else None
        ratio = f"{r['rps'] / base:.2f}×" if base else "-"
        notes = ""
        if r["name"] == "cards_nothing" and r["done"]:
            notes = (
                f"{100 * r['empty'] / r['done']:.1f} % answered by the stamp, "
                f"{100 * r['by_ticket'] / r['done']:.1f} % by ticket (no session)"
            )
        print(
            f"| {LABELS[r['name']]} | {r['concurrency']} | {r['rps']:.0f} | {ratio} | "
            f"{' / '.join(f'{x:.0f}' for x in r['rounds'])} | "
            f"{1000 * r['p50']:.1f} | {1000 * r['p95']:.1f} | "
            f"{r['errors']} / {r['non_2xx']} {r.get('statuses', '')} | {notes} |"
        )


def main() -> None:
    args = parse_args()
    if args.drive:
        drive(args.drive)
        return
    from bench.django_env import django_start
    from bench.gallery_scale import pg_create, pg_drop
    from bench.machine import machine_info

    data_dir = Path(tempfile.mkdtemp(prefix="lipsync-load-"))
    prefix = f"bench-load-{os.getpid()}"
    environ = {"CACHE_KEY_PREFIX": prefix, "PUBLIC_BASE_URL": "http://127.0.0.1"}
    if args.redis_url:
        environ["REDIS_URL"] = args.redis_url
    if args.database_url:
        pg_create(args.database_url)
    proc = None
    try:
        started = time.perf_counter()
        django_start(data_dir=data_dir, database_url=args.database_url, **environ)
        data = fill(args, data_dir=data_dir)
        print(
            f"fill: {data['jobs']} jobs of {args.members} members in "
            f"{time.perf_counter() - started:.0f} s (with migrate)",
            flush=True,
        )
        from django.db import connections

        connections.close_all()
        proc, port, _log = start_gunicorn(data_dir)
        print(f"gunicorn (runstudio's command line) on 127.0.0.1:{port}", flush=True)

        scenarios = load_scenarios(args, data, port)
        # Every page once before anything is timed: workers import and
        # compile templates on first use.
        prime = list(
            {
                s["name"]: dict(s, warmup=0.0, seconds=1.0, clients=s["clients"][:4])
                for s in scenarios
            }.values()
        )
        client_process({"phase": "load", "port": port, "scenarios": prime}, data_dir)
        results = client_process({"phase": "load", "port": port, "scenarios": scenarios}, data_dir)
        print_load(merged(results))

        if args.viewers:
            member = data["clients"][data["played_owner"]]
            spec = {
                "path": f"/jobs/{data['played']}/video.mp4",
                "cookie": member["cookie"],
                "range_of": data["video_bytes"],
            }
            scenario = {
                "name": "range",
                "clients": [spec] * args.viewers,
                "warmup": args.warmup,
                "seconds": args.seconds,
            }
            [played] = merged(
                client_process({"phase": "load", "port": port, "scenarios": [scenario]}, data_dir)
            )
            print(
                f"\n## Playback: {args.viewers} viewers, 1 MiB Range requests at random "
                f"offsets of a {args.video_mb} MiB video\n"
            )
            print(
                f"{played['mib_s']:.0f} MiB/s served, {played['rps']:.0f} requests/s, "
                f"p95 time to first byte {1000 * played['first_p95']:.1f} ms, "
                f"p50 whole answer {1000 * played['p50']:.1f} ms, "
                f"p95 whole answer {1000 * played['p95']:.1f} ms; errors {played['errors']}, "
                f"non-2xx {played['non_2xx']}"
            )

        if args.upload_mb:
            pids = web_pids(proc.pid)
            before = {pid: rss_mib(pid) for pid in pids}
            sampler = RssSampler(pids)
            sampler.start()
            [sent] = client_process(
                {
                    "phase": "upload",
                    "port": port,
                    "upload": {
                        "mp4": str(data_dir / "small.mp4"),
                        "size": args.upload_mb * MIB,
                        "cookie": data["clients"][1]["cookie"],
                        "csrf": os.urandom(16).hex(),
                    },
                },
                data_dir,
            )
            time.sleep(1)
            sampler.done.set()
            sampler.join()
            after = {pid: rss_mib(pid) for pid in pids}
            print(f"\n## Upload: one {args.upload_mb} MiB video through the Studio's form\n")
            print(
                f"answer {sent['status']} after {sent['seconds']:.1f} s "
                f"({sent['bytes'] / MIB / sent['seconds']:.0f} MiB/s), staged: {sent['staged']}"
                + (f", refused: {sent['refusal']}" if sent["refusal"] else "")
            )
            print("| process | RSS before MiB | peak during | after |")
            print("| --- | --- | --- | --- |")
            for pid in pids:
                role = "master" if pid == proc.pid else "worker"
                print(
                    f"| {role} {pid} | {before[pid]:.1f} | {sampler.peak[pid]:.1f} | "
                    f"{after[pid]:.1f} |"
                )

        print("\n## Machine\n")
        database = "PostgreSQL" if args.database_url else "SQLite"
        cache = "Redis cache" if args.redis_url else "local-memory cache"
        for line in machine_info(database=f"{database}, {cache}"):
            print(f"- {line}")
        print(f"\nCommand: {reproduce_command(args)}")
    finally:
        if proc is not None:
            stop(proc)
        if args.redis_url:
            _redis_clean(args.redis_url, prefix)
        if args.database_url and not args.keep:
            from django.db import connections

            connections.close_all()
            pg_drop(args.database_url)
        if not args.keep:
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept: {data_dir}")


def _redis_clean(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


if __name__ == "__main__":
    main()
