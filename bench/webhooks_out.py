"""Outbound webhooks for N ended API jobs, delivered to a local receiver that
fails some first attempts.

    .venv/bin/python bench/webhooks_out.py [--jobs 10000] [--fail 0.1] [--workers 4] [--rate 0]

Prints deliveries per second, attempts per delivery and the time from a
job's end to its first delivery attempt reaching the receiver (median, p95);
machine info and the exact command.

What runs, all in this process:

- a fresh temporary DATA_DIR (SQLite, migrated), FETCH_ALLOW_LOOPBACK=1;
- N queued API jobs (bulk-created) whose `webhook` is a loopback receiver
  (a ThreadingHTTPServer) that answers 500 to the first attempt of a
  `--fail` share of the events (chosen by event id) and 200 otherwise;
- an "ender" thread that fails the jobs one by one through the real
  lifecycle.job_fail (the delivery row is written in that transaction), as
  fast as it can (a burst: measures the backlog) or, with `--rate R`, R jobs
  a second (a studio's ordinary pace: measures the quiet-time latency);
- the cluster replaced by `--workers` threads taking the send tasks that
  job_fail queues on commit (lifecycle.enqueue is redirected to them), plus
  a sweep thread calling webhook_deliveries_send_due every second (the
  shipped schedule runs it every minute) with the clock moved past the
  first retry delay (5 s), so retries are not waited for in real time.

A script, not a test: it asserts nothing; it prints what it saw.
"""

from __future__ import annotations

import argparse
import queue
import shlex
import statistics
import sys
import tempfile
import threading
import time
import zlib
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # jobs, lipsync_site

from bench.django_env import django_start  # noqa: E402
from bench.machine import machine_info  # noqa: E402


class Receiver:
    """Records when each event id first arrives and how many times."""

    def __init__(self, fail: float) -> None:
        self.first_seen: dict[str, float] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self
        cutoff = int(fail * 1000)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = self.headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.first_seen.setdefault(event, time.time())
                    receiver.hits[event] = receiver.hits.get(event, 0) + 1
                    first = receiver.hits[event] == 1
                fails = first and zlib.crc32(event.encode()) % 1000 < cutoff
                self.send_response(500 if fails else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--fail", type=float, default=0.1, help="share failing their 1st try")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=0, help="jobs ended per second (0: as fast as possible)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        django_start(data_dir=Path(tmp), FETCH_ALLOW_LOOPBACK="1")
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections
    from django.utils import timezone

    from jobs.accounts.api_keys import api_key_create
    from jobs.api import webhooks
    from jobs.models import Job, JobMode, JobSource, Pool, WebhookDelivery
    from jobs.pipeline import lifecycle

    receiver = Receiver(args.fail)
    owner = get_user_model().objects.create_user("bench", password="x")
    key, _raw = api_key_create(owner=owner, name="bench")
    webhooks.webhook_secret(key)
    Job.objects.bulk_create(
        Job(
            owner=owner,
            mode=JobMode.TALKING_PHOTO,
            provider="lipsync_studio",
            provider_model="lipsync-image",
            resolution="480p",
            source=JobSource.API,
            pool=Pool.API,
            api_key=key,
            api_webhook=receiver.url,
        )
        for _ in range(args.jobs)
    )
    ids = list(Job.objects.order_by("pk").values_list("pk", flat=True))

    tasks: queue.Queue = queue.Queue()
    lifecycle.enqueue = lambda func, *a: tasks.put(a[0]) if func.endswith("send_webhook") else None
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            try:
                pk = tasks.get(timeout=0.2)
            except queue.Empty:
                continue
            webhooks.webhook_delivery_attempt(pk)
        close_old_connections()

    def sweeper() -> None:
        while not done.wait(1.0):
            # Past the first retry delay: retries go now, not in 5 s.
            webhooks.webhook_deliveries_send_due(now=timezone.now() + timedelta(seconds=6))
        close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    threads.append(threading.Thread(target=sweeper))
    for t in threads:
        t.start()
    started = time.time()
    for n, pk in enumerate(ids):
        if args.rate > 0:
            # Paced: the n-th job ends n / rate seconds after the start.
            time.sleep(max(0.0, started + n / args.rate - time.time()))
        lifecycle.job_fail(Job(pk=pk), message="bench")
    ended = time.time()
    pending = WebhookDelivery.objects.exclude(status="delivered")
    while pending.exists() and time.time() - ended < 600:
        time.sleep(0.5)
    finished = time.time()
    done.set()
    for t in threads:
        t.join()

    rows = list(WebhookDelivery.objects.values_list("event_id", "created_at", "attempts", "status"))
    latencies = sorted(
        receiver.first_seen[e] - created.timestamp()
        for e, created, _a, _s in rows
        if e in receiver.first_seen
    )
    delivered = sum(1 for *_x, s in rows if s == "delivered")
    attempts = sum(a for _e, _c, a, _s in rows)
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    pace = f"{args.rate:g} a second" if args.rate > 0 else "as fast as possible"
    print(f"jobs ended: {len(ids)} in {ended - started:.1f} s (lifecycle.job_fail, one by one, "
          f"{pace})")  # fmt: skip
    print(f"deliveries: {delivered} delivered of {len(rows)} in {finished - started:.1f} s")
    print(f"deliveries per second: {delivered / (finished - started):.0f}")
    print(f"attempts per delivery: {attempts / max(1, len(rows)):.3f} (receiver saw "
          f"{sum(receiver.hits.values())} POSTs)")  # fmt: skip
    if latencies:
        print(
            f"job end -> first attempt received: median {statistics.median(latencies) * 1000:.0f}"
            f" ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
    print("\nmachine:")
    for line in machine_info(database="SQLite"):
        print(f"  {line}")
    print("\ncommand: " + shlex.join([".venv/bin/python", "bench/webhooks_out.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
