"""Real media files made on the fly for tests, so no binary file is committed.

Every function writes one file and returns its path; none prints anything.
They are quick: audio is a low-rate mono tone, video is small and encoded with
x264's fastest preset, and the image bomb is written by hand (its pixels are
never held in memory).

    make_audio(path, seconds, fmt="mp3"|"wav"|"m4a"|"ogg"|"flac")
    make_image(path, width, height, fmt="png"|"jpeg"|"webp")
    make_video(path, seconds, width, height, fps, with_audio=True)
    make_truncated(path_in, path_out, keep_bytes)
    make_text_file(path)
    make_image_bomb(path)                    # 30000x30000 PNG of ~110 KB
"""

from __future__ import annotations

import array
import functools
import io
import math
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

# fmt -> (container format, codec)
_AUDIO_FORMATS = {
    "mp3": ("mp3", "libmp3lame"),
    "wav": ("wav", "pcm_s16le"),
    "m4a": ("ipod", "aac"),
    "ogg": ("ogg", "libopus"),
    "flac": ("flac", "flac"),
}
_IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
# fmt -> (container format, video codec, audio codec)
_VIDEO_FORMATS = {
    "mp4": ("mp4", "libx264", "aac"),
    "mov": ("mov", "libx264", "aac"),
    "mkv": ("matroska", "libx264", "aac"),
    "webm": ("webm", "libvpx", "libopus"),
}


# --- audio -----------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _tone_second(tone_hz: float, sample_rate: int, channels: int) -> bytes:
    """One second of a sine tone, interleaved signed 16-bit (repeats seamlessly
    when tone_hz is a whole number)."""
    step = 2 * math.pi * tone_hz / sample_rate
    mono = [int(12000 * math.sin(step * i)) for i in range(sample_rate)]
    if channels > 1:
        mono = [v for v in mono for _ in range(channels)]
    return array.array("h", mono).tobytes()


def _audio_frames(seconds: float, sample_rate: int, channels: int, tone_hz: float):
    """Frames of at most one second each, with running pts in 1/sample_rate."""
    layout = "mono" if channels == 1 else "stereo"
    second = _tone_second(tone_hz, sample_rate, channels)
    total = round(seconds * sample_rate)
    pts = 0
    while pts < total:
        n = min(sample_rate, total - pts)
        frame = av.AudioFrame(format="s16", layout=layout, samples=n)
        frame.planes[0].update(second[: n * 2 * channels])
        frame.sample_rate = sample_rate
        frame.time_base = Fraction(1, sample_rate)
        frame.pts = pts
        pts += n
        yield frame


def _add_audio_stream(container, codec: str, sample_rate: int, channels: int):
    layout = "mono" if channels == 1 else "stereo"
    stream = container.add_stream(codec, rate=sample_rate, layout=layout)
    if codec in ("libmp3lame", "aac", "libopus"):
        stream.bit_rate = 32000 * channels
    return stream


def make_audio(
    path,
    seconds: float,
    *,
    fmt: str = "mp3",
    tone_hz: float = 440,
    sample_rate: int = 16000,
    channels: int = 1,
    mp3_xing: bool = True,
    cover_art: bool = False,
    bitrate: int | None = None,
) -> Path:
    """A real, decodable audio file of `seconds` length holding a sine tone.

    fmt: "mp3" (LAME), "wav" (PCM), "m4a" (AAC in MP4), "ogg" (Opus) or "flac".
    mp3_xing=False leaves out the Xing/Info header, so the file declares no
    length and FFmpeg can only estimate it from the bitrate.
    bitrate: for the lossy codecs (default 32 kb/s per channel).
    cover_art=True (MP3 only) puts a small JPEG in an ID3v2 APIC frame, which
    FFmpeg shows as an attached-picture video stream.
    """
    path = Path(path)
    container_fmt, codec = _AUDIO_FORMATS[fmt]
    options = {}
    if fmt == "mp3" and not mp3_xing:
        options["write_xing"] = "0"
    if fmt == "mp3" and cover_art:
        options["id3v2_version"] = "0"  # ours goes in front instead
    with av.open(str(path), "w", format=container_fmt, options=options) as out:
        stream = _add_audio_stream(out, codec, sample_rate, channels)
        if bitrate:
            stream.bit_rate = bitrate
        for frame in _audio_frames(seconds, sample_rate, channels, tone_hz):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if cover_art:
        if fmt != "mp3":
            raise ValueError("cover_art is only made for MP3")
        body = path.read_bytes()
        path.write_bytes(_id3_cover_tag() + body)
    return path


def _id3_cover_tag() -> bytes:
    """An ID3v2.3 tag holding one APIC (front cover) frame with a JPEG."""
    buf = io.BytesIO()
    _picture(96, 96).save(buf, format="JPEG", quality=70)
    apic = b"\x00" + b"image/jpeg\x00" + b"\x03" + b"\x00" + buf.getvalue()
    frame = b"APIC" + struct.pack(">I", len(apic)) + b"\x00\x00" + apic
    size = len(frame)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + syncsafe + frame


# --- images ----------------------------------------------------------------------


def _picture(width: int, height: int, color=(200, 150, 110)) -> Image.Image:
    """A warm gradient with a face-like oval: two eyes and a mouth."""
    ramp = Image.linear_gradient("L").resize((width, height))
    r, g, b = color
    img = Image.merge(
        "RGB",
        (
            ramp.point(lambda v: min(255, r * 3 // 4 + v // 4)),
            ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT).point(
                lambda v: min(255, g * 3 // 4 + v // 4)
            ),
            ramp.transpose(Image.Transpose.ROTATE_180).point(
                lambda v: min(255, b * 3 // 4 + v // 4)
            ),
        ),
    )
    draw = ImageDraw.Draw(img)
    cx, cy, s = width // 2, height // 2, min(width, height)
    draw.ellipse((cx - s * 0.3, cy - s * 0.4, cx + s * 0.3, cy + s * 0.4), fill=(235, 200, 170))
    for ex in (cx - s * 0.12, cx + s * 0.12):
        ey, er = cy - s * 0.1, max(1, s * 0.05)
        draw.ellipse((ex - er, ey - er, ex + er, ey + er), fill=(40, 40, 60))
    draw.ellipse((cx - s * 0.1, cy + s * 0.15, cx + s * 0.1, cy + s * 0.22), fill=(150, 50, 60))
    return img


def make_image(
    path,
    width: int = 640,
    height: int = 480,
    *,
    fmt: str = "png",
    color: tuple[int, int, int] = (200, 150, 110),
    exif_orientation: int | None = None,
) -> Path:
    """A simple "photo" (a gradient with a face-like oval) in PNG, JPEG or WebP.

    exif_orientation (JPEG/WebP/PNG): store this EXIF Orientation tag, e.g. 6
    for "rotate 90° clockwise to display".
    """
    path = Path(path)
    img = _picture(width, height, color)
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    pil_fmt = _IMAGE_FORMATS[fmt]
    if pil_fmt == "JPEG":
        kwargs["quality"] = 85
    elif pil_fmt == "WEBP":
        kwargs.update(quality=80, method=0)
    elif pil_fmt == "PNG":
        kwargs["compress_level"] = 1
    img.save(path, format=pil_fmt, **kwargs)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@functools.lru_cache(maxsize=4)
def _bomb_bytes(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG, all black, compressed at deflate's best
    ratio; the pixels are streamed into the compressor, never held whole."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0, then black pixels
    comp = zlib.compressobj(9)
    rows_per_chunk = max(1, (1 << 20) // len(row))
    chunk = row * rows_per_chunk
    parts = []
    done = 0
    while done < height:
        n = min(rows_per_chunk, height - done)
        parts.append(comp.compress(chunk if n == rows_per_chunk else row * n))
        done += n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def make_image_bomb(path, width: int = 30000, height: int = 30000) -> Path:
    """A small PNG declaring width x height pixels (900 MP by default, far
    above any sane limit): decompressing it would need ~112 MB even at 1 bit
    per pixel, and far more once converted to RGB."""
    path = Path(path)
    path.write_bytes(_bomb_bytes(width, height))
    return path


# --- video -----------------------------------------------------------------------


def make_video(
    path,
    seconds: float,
    width: int = 640,
    height: int = 360,
    fps: int = 15,
    *,
    with_audio: bool = True,
    fmt: str = "mp4",
    tone_hz: float = 330,
    display_rotation: int = 0,
) -> Path:
    """A short clip: the "photo" with a blue dot moving left to right along its
    top edge, H.264 + AAC in MP4 by default ("mov", "mkv": same codecs;
    "webm": VP8 + Opus).

    display_rotation (MP4/MOV): 90, 180 or 270 degrees clockwise, written in
    the track's matrix the way phones mark portrait videos (FFmpeg reports a
    display-matrix rotation of -90 for 90).
    """
    path = Path(path)
    container_fmt, vcodec, acodec = _VIDEO_FORMATS[fmt]
    base = _picture(width, height)
    n_frames = max(1, round(seconds * fps))
    with av.open(str(path), "w", format=container_fmt) as out:
        vstream = out.add_stream(vcodec, rate=fps)
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = "yuv420p"
        if vcodec == "libx264":
            vstream.options = {"preset": "ultrafast", "crf": "32"}
        else:
            vstream.options = {"deadline": "realtime", "cpu-used": "8"}
            vstream.bit_rate = 300_000
        astream = _add_audio_stream(out, acodec, 16000, 1) if with_audio else None
        r = max(2, min(width, height) // 20)
        for i in range(n_frames):
            img = base.copy()
            x = r + (width - 2 * r) * i // n_frames
            ImageDraw.Draw(img).ellipse((x - r, r, x + r, 3 * r), fill=(30, 90, 200))
            frame = av.VideoFrame.from_image(img)
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
        if astream is not None:
            for frame in _audio_frames(n_frames / fps, 16000, 1, tone_hz):
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
    if display_rotation:
        _set_track_matrix(path, display_rotation)
    return path


# QuickTime track matrices (a, b, c, d in 16.16) turning a picture clockwise.
_CLOCKWISE = {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}


def _set_track_matrix(path: Path, degrees: int) -> None:
    """Rewrite the first video track's tkhd matrix in place (the clips are
    small, and the first tkhd of ours is the video's)."""
    a, b, c, d = (v * 0x10000 for v in _CLOCKWISE[degrees])
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd") + 4
    if data[at] != 0:
        raise ValueError("only version-0 tkhd boxes are patched")
    matrix = at + 40  # version/flags, 2 dates, id, reserved, duration, 8 reserved, 4 shorts
    data[matrix : matrix + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))


# --- bad inputs ------------------------------------------------------------------


def make_truncated(path_in, path_out, keep_bytes: int) -> Path:
    """A copy of path_in cut after its first keep_bytes bytes."""
    path_out = Path(path_out)
    with open(path_in, "rb") as src, open(path_out, "wb") as dst:
        dst.write(src.read(max(0, keep_bytes)))
    return path_out


def make_text_file(path, text: str = "These are the meeting notes, not a song.\n" * 40) -> Path:
    """Plain text, whatever the file is named."""
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path
