"""Archiving a long video into storage, and reading it back, on the local disk
and on S3: the worker's memory stays flat whatever the video's size.

    .venv/bin/python bench/storage_memory.py [--mb 500] [--backend local,s3]

For each backend, in a fresh child process (so its peak RSS is its own):

- the studio on a fresh temporary DATA_DIR (SQLite, migrated), with
  STORAGE_BACKEND local, or s3 against moto's S3 server (moto[server], its own
  process on 127.0.0.1, port chosen by the OS; a real S3 API, so boto3 sends
  real multipart uploads and ranged GETs over HTTP);
- an MP4 of --mb MB: a 2 s clip made with PyAV, padded with a `free` box
  (valid ISO BMFF, which decoders skip), served by a loopback HTTP server;
- one job left "archiving" with that server's URL as the provider's output,
  archived by the real lifecycle.job_archive: the download streamed to a
  temporary file, probed with PyAV, saved to storage, settled, a poster taken;
- then the whole stored file read through StoredReader (what a player's
  ranged requests, or an API download, stream), and through local_copy (what
  the decoders get from an object store).

Prints, per step, the seconds, the peak of Python's traced allocations
(tracemalloc) and the growth of the process's peak RSS. Not measured: the
web process during an upload (the upload handler streams to a temporary
file; jobs/studio/upload_limits.py), nor moto's own memory (it keeps every
object in its process, as a real store would on its disks).

A script, not a test: it asserts nothing; it prints what it saw.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # jobs, lipsync_site, tests.media_factory

MB = 1024 * 1024

S3_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


def padded_mp4(path: Path, megabytes: int) -> None:
    """A playable 2 s MP4 grown to `megabytes` by a trailing `free` box."""
    from tests.media_factory import make_video

    make_video(path, 2.0, 640, 360, 15)
    pad = megabytes * MB - path.stat().st_size - 8
    block = b"\0" * MB
    with open(path, "ab") as fh:
        fh.write(pad.to_bytes(4, "big") if pad + 8 < 2**32 else b"\0\0\0\1")
        fh.write(b"free")
        left = pad
        while left > 0:
            fh.write(block[: min(MB, left)])
            left -= MB


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Step:
    """Seconds, traced peak and peak-RSS growth of one step."""

    def __init__(self, name: str, results: dict) -> None:
        self.name, self.results = name, results

    def __enter__(self):
        tracemalloc.reset_peak()
        self.rss = rss_peak_mb()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.results[self.name] = {
            "seconds": round(time.perf_counter() - self.started, 2),
            "traced_peak_mb": round(tracemalloc.get_traced_memory()[1] / MB, 1),
            "rss_peak_growth_mb": round(rss_peak_mb() - self.rss, 1),
        }


def child(backend: str, megabytes: int, endpoint: str) -> dict:
    from bench.django_env import django_start

    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-storage-{backend}-"))
    environ = {"FETCH_ALLOW_LOOPBACK": "1", "STORAGE_BACKEND": backend}
    if backend == "s3":
        import boto3

        bucket = "bench-media"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket=bucket)
        environ |= {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_S3_ADDRESSING_STYLE": "path",
        }
    django_start(data_dir=data_dir, **environ)

    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage

    from jobs.credits.ledger import credits_grant
    from jobs.files.storage import StoredReader, local_copy
    from jobs.models import Job, JobState
    from jobs.pipeline import lifecycle
    from tests.factories import make_job

    source = data_dir / "served" / "output.mp4"
    source.parent.mkdir()
    padded_mp4(source, megabytes)
    handler = partial(SimpleHTTPRequestHandler, directory=str(source.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()

    owner = get_user_model().objects.create_user("bench", password="x")
    credits_grant(user=owner, pool="studio", amount=1000, key="grant:bench")
    job = make_job(owner, state=JobState.ARCHIVING, held=100)
    url = f"http://127.0.0.1:{server.server_address[1]}/output.mp4"
    Job.objects.filter(pk=job.pk).update(output_url=url)

    results: dict = {"backend": backend, "size_mb": round(source.stat().st_size / MB, 1)}
    results["rss_peak_before_mb"] = round(rss_peak_mb(), 1)
    tracemalloc.start()
    with Step("archive (download, probe, store, settle, poster)", results):
        lifecycle.job_archive(job.pk)
    job.refresh_from_db()
    results["state"] = job.state
    results["stored_mb"] = round(default_storage.size(job.output.name) / MB, 1)
    with Step("stream the stored video (StoredReader)", results):
        reader = StoredReader(job.output.name)
        read = sum(len(chunk) for chunk in reader.read(0, reader.size))
    results["streamed_mb"] = round(read / MB, 1)
    with Step("local_copy for the decoders", results):
        with local_copy(job.output.name) as path:
            results["copy_mb"] = round(path.stat().st_size / MB, 1)
    tracemalloc.stop()
    server.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=500, help="size of the video (MB)")
    parser.add_argument("--backend", default="local,s3")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mb, args.endpoint)))
        return

    from bench.machine import machine_info

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lipsync_site.settings")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-storage-"))
    import django

    django.setup()
    print("Command:", shlex.join([sys.executable, *sys.argv]))
    moto = subprocess.Popen(
        [sys.executable, "-c", S3_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its request log
        text=True,
    )
    try:
        endpoint = f"http://127.0.0.1:{moto.stdout.readline().strip()}"
        for backend in args.backend.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    backend,
                    "--mb",
                    str(args.mb),
                    "--endpoint",
                    endpoint,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results = json.loads(out.strip().splitlines()[-1])
            print()
            print(
                f"{backend}: {results['size_mb']} MB video, job {results['state']}, "
                f"stored {results['stored_mb']} MB, streamed back {results['streamed_mb']} MB, "
                f"copied back {results['copy_mb']} MB; peak RSS before: "
                f"{results['rss_peak_before_mb']} MB"
            )
            for name, figures in results.items():
                if isinstance(figures, dict):
                    traced, rss = figures["traced_peak_mb"], figures["rss_peak_growth_mb"]
                    print(
                        f"  {name}: {figures['seconds']} s, traced peak {traced} MB, "
                        f"peak RSS +{rss} MB"
                    )
    finally:
        moto.stdin.close()
        moto.wait(timeout=30)
    print()
    for line in machine_info(database="SQLite"):
        print(line)


if __name__ == "__main__":
    main()
