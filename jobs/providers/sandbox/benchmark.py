"""Print how fast the sandbox renders, so timing claims come from a script.

    .venv/bin/python -m jobs.providers.sandbox.benchmark [--seconds 10] [--repeat 3]

1. Render only: each mode (talking photo, dialog, dub) at 480p and 720p,
   from files on disk (decode + render + encode), best and median of N runs.
2. End to end over HTTP: a JoyPix dialog submitted to a SandboxServer with
   rtf=0 and min_delay=0 by the studio's JoyPix adapter (a client of the
   sandbox, as the studio is), inputs fetched from a local file server,
   polled until completed and the MP4 downloaded.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import threading
import time
import wave
from array import array
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import requests
from PIL import Image

from jobs.providers.base import SubmitRequest
from jobs.providers.joypix import JoyPixAdapter

from .config import SandboxConfig
from .render import decode_audio, load_image, render_dub, render_photo
from .server import SandboxServer


def _wav(path: Path, seconds: float, hz: float, *, pause_every: float = 0) -> Path:
    rate = 44100
    samples = array(
        "h",
        (
            0
            if pause_every and int(i / rate / pause_every) % 2
            else int(9000 * math.sin(2 * math.pi * hz * i / rate))
            for i in range(int(seconds * rate))
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def _clip(path: Path, seconds: float, width: int = 640, height: int = 360, fps: int = 25) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            shade = int(255 * i / (seconds * fps))
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (shade, 90, 200)))
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _time(fn, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds = args.seconds

    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        root = Path(tmp)
        left = _wav(root / "left.wav", seconds, 220, pause_every=1.0)
        right = _wav(root / "right.wav", seconds * 0.8, 330)
        Image.new("RGB", (1200, 1500), (190, 140, 100)).save(root / "photo.jpg", quality=90)
        clip = _clip(root / "clip.mp4", 2.0)
        out = root / "out.mp4"

        def photo(resolution):
            image = load_image(root / "photo.jpg", label="image")
            audio = decode_audio(left, max_seconds=600, label="audio")
            render_photo(out, image, [audio], resolution=resolution, fps=12)

        def dialog(resolution):
            image = load_image(root / "photo.jpg", label="image")
            audios = [decode_audio(p, max_seconds=600, label="audio") for p in (left, right)]
            render_photo(out, image, audios, resolution=resolution, fps=12)

        def dub(resolution):
            audio = decode_audio(left, max_seconds=600, label="audio")
            render_dub(out, clip, audio, resolution=resolution, fps=12)

        print(f"Render only: {seconds:g} s of output, 12 fps, best / median of {args.repeat}")
        for name, fn in (
            ("talking photo", photo),
            ("dialog", dialog),
            ("dub (2 s 640x360 source, looped)", dub),
        ):
            for resolution in ("480p", "720p"):
                best, median = _time(partial(fn, resolution), args.repeat)
                print(
                    f"  {name:34} {resolution}  {best:6.3f} s  {median:6.3f} s  "
                    f"({seconds / best:5.1f}x real time)"
                )

        files = ThreadingHTTPServer(
            ("127.0.0.1", 0),
            partial(_QuietFiles, directory=str(root)),
        )
        threading.Thread(target=files.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{files.server_address[1]}"
        config = SandboxConfig(rtf=0, min_delay=0)
        request = SubmitRequest(
            mode="dialog",
            resolution="720p",
            left_audio_url=f"{base}/left.wav",
            right_audio_url=f"{base}/right.wav",
            image_url=f"{base}/photo.jpg",
        )
        with (
            SandboxServer(config) as sandbox,
            JoyPixAdapter(base_url=sandbox.url, api_key=config.api_key, read_timeout=10) as joypix,
        ):
            runs = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                task_id = joypix.submit(request)
                while (status := joypix.status(task_id)).state not in ("completed", "failed"):
                    time.sleep(0.01)
                assert status.state == "completed", status.error
                size = len(requests.get(status.video_url, timeout=30).content)
                runs.append(time.perf_counter() - started)
            print(
                f"End to end over HTTP (JoyPix dialog, 720p, rtf 0): best {min(runs):.3f} s, "
                f"median {statistics.median(runs):.3f} s, output {size / 1024:.0f} KiB"
            )
        files.shutdown()
        files.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    main()
