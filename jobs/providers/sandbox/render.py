"""Rendering a real MP4 (H.264 + AAC) with PyAV and Pillow, without numpy.

- Photo modes: the photo letterboxed to the resolution, held for the length of
  the longer audio. A dialog's two audios are mixed with the left one panned
  left and the right one panned right, and a level bar for each speaker is
  drawn from the audio's RMS, so one sees who speaks. A dialog whose speakers
  take turns is first laid out with in_turn(): left, then right.
- Dub: the input video's frames (looped to the audio's length, letterboxed)
  with the new audio and one level bar.

Frames are built directly in yuv420p planes (bytearrays): the letterboxed
picture is converted once and each frame only copies it and fills a few
rectangles, which keeps a 10 s 720p render well under a second.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageOps

SAMPLE_RATE = 44100
RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720)}
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_FORMATS = ["JPEG", "PNG", "WEBP"]
MAX_VIDEO_SIDE = 4096
_OPEN_OPTIONS = {"protocol_whitelist": "file"}  # a local file, nothing it may point to

# BT.601 limited range, what swscale uses for rgb24 -> yuv420p by default.
_BLACK = (16, 128, 128)


class RenderError(Exception):
    """Bad input; str() is the task's error message."""


class RenderStopped(Exception):
    """The server is stopping."""


def _yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


_TRACK = _yuv(40, 40, 48)
_LEFT = _yuv(46, 204, 113)  # green
_RIGHT = _yuv(52, 152, 219)  # blue


# --- Audio ---------------------------------------------------------------------------


def decode_audio(path: Path, *, max_seconds: float, label: str) -> array:
    """The whole audio as mono signed 16-bit samples at SAMPLE_RATE."""
    samples = array("h")
    limit = int(max_seconds * SAMPLE_RATE)
    try:
        with av.open(str(path), options=_OPEN_OPTIONS) as container:
            if not container.streams.audio:
                raise RenderError(f"{label} has no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
                if len(samples) > limit:
                    raise RenderError(f"{label} is longer than {max_seconds / 60:g} minutes")
            for out in resampler.resample(None):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
    except av.FFmpegError as exc:
        raise RenderError(f"Could not decode {label} as audio") from exc
    if len(samples) < SAMPLE_RATE // 10:
        raise RenderError(f"{label} is empty or shorter than 0.1 s")
    if len(samples) > limit:
        raise RenderError(f"{label} is longer than {max_seconds / 60:g} minutes")
    return samples


def _stereo(left: array, right: array, n: int) -> array:
    """Interleaved stereo: left channel from `left`, right from `right`, both
    padded with silence to n samples."""
    out = array("h", bytes(4 * n))
    out[0::2] = _padded(left, n)
    out[1::2] = _padded(right, n)
    return out


def _padded(samples: array, n: int) -> array:
    if len(samples) >= n:
        return samples[:n]
    return samples + array("h", bytes(2 * (n - len(samples))))


def in_turn(left: array, right: array) -> tuple[array, array]:
    """A dialog's two clips one after the other: the left clip then silence,
    and silence then the right clip, both as long as the two together."""
    return (
        left + array("h", bytes(2 * len(right))),
        array("h", bytes(2 * len(left))) + right,
    )


def _level(samples: array, start: int, end: int) -> float:
    """0..1 loudness of samples[start:end]: -50 dBFS -> 0, 0 dBFS -> 1."""
    window = samples[start:end:4]
    if not window:
        return 0.0
    rms = math.sqrt(math.sumprod(window, window) / len(window))
    if rms < 1:
        return 0.0
    db = 20 * math.log10(rms / 32768)
    return min(1.0, max(0.0, (db + 50) / 50))


# --- Frames as yuv420p planes ---------------------------------------------------------


class Canvas:
    """A yuv420p picture as three bytearrays laid out like an av.VideoFrame's planes."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        template = av.VideoFrame(width, height, "yuv420p")
        self.line_sizes = [p.line_size for p in template.planes]
        self.planes = [
            bytearray(bytes([value]) * p.buffer_size)
            for p, value in zip(template.planes, _BLACK, strict=True)
        ]

    def copy(self) -> Canvas:
        clone = Canvas.__new__(Canvas)
        clone.width, clone.height, clone.line_sizes = self.width, self.height, self.line_sizes
        clone.planes = [bytearray(p) for p in self.planes]
        return clone

    def paste(self, frame: av.VideoFrame, x: int, y: int) -> None:
        """Copy a yuv420p frame in at (x, y); x and y even."""
        for i, plane in enumerate(frame.planes):
            shift = 0 if i == 0 else 1
            src = bytes(plane)
            src_ls, dst_ls = plane.line_size, self.line_sizes[i]
            w = plane.width
            x0, y0 = x >> shift, y >> shift
            dst = self.planes[i]
            if x0 == 0 and src_ls == dst_ls and w == dst_ls:
                start = y0 * dst_ls
                dst[start : start + len(src)] = src
                continue
            for row in range(plane.height):
                d = (y0 + row) * dst_ls + x0
                s = row * src_ls
                dst[d : d + w] = src[s : s + w]

    def fill(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        """Fill a rectangle; x, y, w, h even."""
        if w <= 0 or h <= 0:
            return
        for i, value in enumerate(color):
            shift = 0 if i == 0 else 1
            ls, plane = self.line_sizes[i], self.planes[i]
            px, py, pw, ph = x >> shift, y >> shift, w >> shift, h >> shift
            row = bytes([value]) * pw
            for r in range(py, py + ph):
                start = r * ls + px
                plane[start : start + pw] = row

    def to_frame(self) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(frame.planes, self.planes, strict=True):
            plane.update(data)
        return frame


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _fit(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Letterboxed size and even offsets of a src_w x src_h picture in width x height."""
    scale = min(width / src_w, height / src_h)
    w, h = min(width, _even(src_w * scale)), min(height, _even(src_h * scale))
    x = _even((width - w) / 2) if w < width else 0
    y = _even((height - h) / 2) if h < height else 0
    return w, h, x, y


def _draw_bar(canvas: Canvas, slot: str, level: float, color: tuple[int, int, int]) -> None:
    """A horizontal level bar at the bottom: slot "left", "right" or "center"."""
    w, h = canvas.width, canvas.height
    bar_w, bar_h, margin = _even(w * 0.28), _even(h / 36), _even(h / 24)
    x = {"left": margin, "right": _even(w - margin - bar_w), "center": _even((w - bar_w) / 2)}[slot]
    y = _even(h - margin - bar_h)
    canvas.fill(x - 2, y - 2, bar_w + 4, bar_h + 4, _TRACK)
    canvas.fill(x, y, _even(bar_w * level) if level > 0 else 0, bar_h, color)


# --- Inputs to pictures ------------------------------------------------------------------


def load_image(path: Path, *, label: str) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise RenderError(f"Could not decode {label} as an image (JPEG, PNG or WebP)") from exc


def photo_canvas(image: Image.Image, width: int, height: int) -> Canvas:
    w, h, x, y = _fit(image.width, image.height, width, height)
    scaled = image.resize((w, h), Image.Resampling.BILINEAR)
    canvas = Canvas(width, height)
    canvas.paste(av.VideoFrame.from_image(scaled).reformat(format="yuv420p"), x, y)
    return canvas


class VideoLoop:
    """The input video's picture at any time t, looping past its end."""

    def __init__(self, path: Path, width: int, height: int, *, label: str) -> None:
        self.path, self.width, self.height, self.label = path, width, height, label
        self._container: av.container.InputContainer | None = None
        self._frames = None
        self._offset = 0.0  # seconds added to the input's times in the current loop
        self._t0: float | None = None
        self._last_t = 0.0
        self._step = 1 / 25
        self._current: tuple[float, av.VideoFrame] | None = None
        self._next: tuple[float, av.VideoFrame] | None = None
        # The frame last letterboxed, kept alive with its picture: an id() alone could
        # be reused by a later frame once this one is freed, showing a stale picture.
        self._cached: tuple[av.VideoFrame, Canvas] | None = None
        self._open()
        self._next = self._read()
        if self._next is None:
            raise RenderError(f"{label} has no video frames")
        self._current = self._next
        self._next = self._read()

    def _open(self) -> None:
        self.close()
        try:
            self._container = av.open(str(self.path), options=_OPEN_OPTIONS)
        except av.FFmpegError as exc:
            raise RenderError(f"Could not decode {self.label} as video") from exc
        if not self._container.streams.video:
            raise RenderError(f"{self.label} has no video stream")
        stream = self._container.streams.video[0]
        if (stream.codec_context.width or 0) > MAX_VIDEO_SIDE or (
            stream.codec_context.height or 0
        ) > MAX_VIDEO_SIDE:
            raise RenderError(f"{self.label} is larger than {MAX_VIDEO_SIDE} pixels")
        stream.thread_type = "AUTO"
        if stream.average_rate:
            self._step = float(1 / stream.average_rate)
        self._frames = self._container.decode(stream)
        self._index = 0

    def _read(self) -> tuple[float, av.VideoFrame] | None:
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise RenderError(f"Could not decode {self.label} as video") from exc
        t = frame.time if frame.time is not None else self._index * self._step
        self._index += 1
        if self._t0 is None:
            self._t0 = t
        t = t - self._t0 + self._offset
        self._last_t = t
        return t, frame

    def at(self, t: float) -> Canvas:
        assert self._current is not None
        while True:
            if self._next is None:  # end of input: start the next loop
                self._offset = self._last_t + self._step
                self._t0 = None
                self._open()
                self._next = self._read()
                if self._next is None:
                    raise RenderError(f"{self.label} has no video frames")
            if self._next[0] > t:
                break
            self._current, self._next = self._next, self._read()
        frame = self._current[1]
        if self._cached is None or self._cached[0] is not frame:
            self._cached = (frame, self._letterbox(frame))
        return self._cached[1]

    def _letterbox(self, frame: av.VideoFrame) -> Canvas:
        w, h, x, y = _fit(frame.width, frame.height, self.width, self.height)
        canvas = Canvas(self.width, self.height)
        canvas.paste(frame.reformat(width=w, height=h, format="yuv420p"), x, y)
        return canvas

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


# --- Writing ------------------------------------------------------------------------------


def _write(
    out_path: Path,
    picture_at: Callable[[float], Canvas],
    bars: list[tuple[str, array, tuple[int, int, int]]],
    stereo: array,
    *,
    width: int,
    height: int,
    fps: int,
    stop: threading.Event | None,
) -> float:
    """Encode frames and audio into out_path; returns the audio's seconds."""
    n = len(stereo) // 2
    seconds = n / SAMPLE_RATE
    frame_count = max(1, math.ceil(seconds * fps))
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "stillimage", "crf": "26"}
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        audio.bit_rate = 128_000
        audio_tb = Fraction(1, SAMPLE_RATE)
        written = 0
        for k in range(frame_count):
            if stop is not None and stop.is_set():
                raise RenderStopped
            start = k * SAMPLE_RATE // fps
            end = min(n, (k + 1) * SAMPLE_RATE // fps)
            canvas = picture_at(k / fps)
            if bars:
                canvas = canvas.copy()
                for slot, mono, color in bars:
                    _draw_bar(canvas, slot, _level(mono, start, end), color)
            frame = canvas.to_frame()
            frame.pts = k
            for packet in video.encode(frame):
                out.mux(packet)
            if end > written:
                chunk = av.AudioFrame(format="s16", layout="stereo", samples=end - written)
                chunk.planes[0].update(stereo[2 * written : 2 * end].tobytes())
                chunk.sample_rate, chunk.pts, chunk.time_base = SAMPLE_RATE, written, audio_tb
                for packet in audio.encode(chunk):
                    out.mux(packet)
                written = end
        for packet in video.encode():
            out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return seconds


def render_photo(
    out_path: Path,
    image: Image.Image,
    audios: list[array],
    *,
    resolution: str,
    fps: int,
    stop: threading.Event | None = None,
) -> float:
    """One audio (talking photo) or two (dialog: left, right). Returns seconds."""
    width, height = RESOLUTIONS[resolution]
    base = photo_canvas(image, width, height)
    n = max(len(a) for a in audios)
    if len(audios) == 1:
        stereo = _stereo(audios[0], audios[0], n)
        bars = [("center", audios[0], _LEFT)]
    else:
        left, right = audios
        stereo = _stereo(left, right, n)
        bars = [("left", left, _LEFT), ("right", right, _RIGHT)]
    return _write(
        out_path, lambda _t: base, bars, stereo, width=width, height=height, fps=fps, stop=stop
    )


def render_dub(
    out_path: Path,
    video_path: Path,
    audio: array,
    *,
    resolution: str,
    fps: int,
    label: str = "video",
    stop: threading.Event | None = None,
) -> float:
    width, height = RESOLUTIONS[resolution]
    loop = VideoLoop(video_path, width, height, label=label)
    try:
        stereo = _stereo(audio, audio, len(audio))
        return _write(
            out_path,
            loop.at,
            [("center", audio, _LEFT)],
            stereo,
            width=width,
            height=height,
            fps=fps,
            stop=stop,
        )
    finally:
        loop.close()
