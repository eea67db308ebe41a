"""Checking uploads by decoding them (never by their name), and measuring them.

Everything works on paths on disk and never reads a whole file into memory:
images are decoded by Pillow with a pixel limit, audio and video are demuxed
packet by packet by FFmpeg (through PyAV) and only their first frames decoded.

Safety of the FFmpeg side (see `_open_av`):
- `format_whitelist` names the only demuxers FFmpeg may use for the file. FFmpeg
  still sniffs the content to choose one, but if its choice is not on the list
  the open fails *before* that demuxer reads anything. This is what stops a
  playlist: an `ffconcat` file (recognised by content, whatever its name) or an
  HLS `.m3u8` would otherwise make FFmpeg open other local files, and
  `protocol_whitelist=file` alone does not prevent that, because those other
  files are read through the very `file` protocol it allows.
- `protocol_whitelist=file` stops any nested open over the network or through
  `concat:`/`subfile:`/`data:` style protocols.
- `enable_drefs=0` (the MOV/MP4 demuxer's default, stated here on purpose)
  stops an MP4 pointing at external data files.
- `max_streams` caps what a crafted file can make FFmpeg allocate.

Measuring durations (see `_settle_duration`): the length is what the packets
that are really in the file cover. When the header states a length (an MP3 Xing
or Info tag, the WAV data size, FLAC STREAMINFO, MP4 and Matroska durations) and
the packets fall short of it by more than max(0.5 s, 2 %), the file is cut short
and refused: that is how a truncated upload is caught. A file that merely ends
early without any header claim (an MP3 without a Xing tag cut at a frame
boundary, an Ogg file) is a valid, shorter file: it decodes and is measured by
what is there, which is what the provider will bill.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from PIL import Image, ImageOps, UnidentifiedImageError

# --- limits ----------------------------------------------------------------------

MAX_IMAGE_PIXELS = 40_000_000
MIN_IMAGE_SIDE = 64
MAX_IMAGE_SIDE = 12_000
MIN_SECONDS = 0.5
# Codec padding (an MP3's encoder delay without a LAME tag, AAC priming) can
# make a file a player shows as 10:00 measure up to ~0.1-0.2 s longer; such a
# file is not "over the limit".
LIMIT_GRACE_SECONDS = 0.25
MAX_STREAMS = 8
MIN_VIDEO_SIDE = 64
# Packets decoded to prove a stream really decodes (the rest is only demuxed).
DECODE_PACKETS = 48
# While no frame has come out yet (decoder delay), keep decoding up to this many.
DECODE_PACKETS_HARD_CAP = 400

# Pillow's own guard: a warning above this many pixels, an error above twice
# as many. probe_image turns the warning into an error too.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
IMAGE_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}

# FFmpeg demuxer names; a demuxer matches if any of its comma-separated names
# does ("mov" is "mov,mp4,m4a,3gp,3g2,mj2", "matroska" is "matroska,webm").
AUDIO_DEMUXERS = ("mp3", "wav", "mov", "ogg", "flac", "aac")
VIDEO_DEMUXERS = ("mov", "matroska")
AUDIO_CODECS = frozenset({"mp3", "aac", "opus", "vorbis", "flac", "alac"})
VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})

NOT_IMAGE = "This file is not an image we can read (JPEG, PNG, WebP)."
NOT_AUDIO = "This file is not an audio file we can read (MP3, WAV, M4A/AAC, OGG, FLAC)."
NOT_VIDEO = "This file is not a video we can read (MP4, MOV, WebM, MKV)."


class MediaError(ValueError):
    """Bad input. The message is safe and clear to show a member next to the
    form field that held the file."""


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed, i.e. after the EXIF orientation
    height: int
    format: str  # "JPEG", "PNG" or "WEBP"
    content_type: str

    @property
    def extension(self) -> str:
        """What a file of this format is named with (never the client's name)."""
        return IMAGE_EXTENSIONS[self.format]


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds
    codec: str  # "mp3", "aac", "opus", "vorbis", "flac", "pcm_s16le", ...
    container: str  # "mp3", "wav", "m4a", "ogg", "flac", "aac"
    sample_rate: int  # of the decoded audio
    channels: int
    content_type: str

    @property
    def extension(self) -> str:
        return f".{self.container}"


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds
    width: int  # as displayed, i.e. after any rotation in the file
    height: int
    fps: float
    video_codec: str
    audio_codec: str | None
    container: str  # "mp4", "mov", "mkv", "webm"
    content_type: str

    @property
    def extension(self) -> str:
        return f".{self.container}"


def format_duration(seconds: float) -> str:
    """`m:ss` (minutes are not wrapped into hours): 662.4 -> "11:02"."""
    total = max(0, round(seconds))
    return f"{total // 60}:{total % 60:02d}"


def _mp(pixels: int) -> str:
    return f"{pixels / 1_000_000:.0f}" if pixels >= 10_000_000 else f"{pixels / 1_000_000:.1f}"


# --- images ----------------------------------------------------------------------


@contextmanager
def _open_image(path) -> Iterator[Image.Image]:
    """Open with only our formats and the pixel limit; the bomb warning is an
    error here. Yields the unloaded image (its header has been read).

    warnings.catch_warnings is process-wide, not per thread; that is harmless
    here because _check_pixels refuses the same images by itself."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=list(IMAGE_FORMATS)) as img:
                _check_pixels(img.width, img.height)
                yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(_too_many_pixels(_declared_pixels(exc))) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(NOT_IMAGE) from exc
    except (MediaError, FileNotFoundError):
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(
            "This image could not be read to the end; it may be damaged or cut short."
        ) from exc


def _declared_pixels(exc: BaseException) -> int | None:
    """The pixel count Pillow's bomb guard read from the header (it names it
    in its message); the header is all that was read."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    return int(match.group(1)) if match else None


def _too_many_pixels(pixels: int | None, size: str = "") -> str:
    limit = f"the limit is {_mp(MAX_IMAGE_PIXELS)} megapixels"
    if pixels is None:
        return f"This image is too large; {limit}."
    return f"This image is too large: {_mp(pixels)} megapixels{size}; {limit}."


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(_too_many_pixels(width * height, f" ({width}×{height})"))
    if max(width, height) > MAX_IMAGE_SIDE:
        raise MediaError(
            f"This image is {width}×{height} pixels; the longest side we accept is "
            f"{MAX_IMAGE_SIDE} pixels."
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise MediaError(
            f"This image is only {width}×{height} pixels; it must be at least "
            f"{MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE}."
        )


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block just means "as stored"
        return 1


def probe_image(path) -> ImageInfo:
    """Decode the whole picture (a truncated file fails) and measure it.

    Raises MediaError for anything that is not a still JPEG, PNG or WebP within
    MIN_IMAGE_SIDE..MAX_IMAGE_SIDE per side and MAX_IMAGE_PIXELS in all.
    """
    with _open_image(path) as img:
        fmt = img.format
        width, height = img.size
        if getattr(img, "n_frames", 1) > 1:
            raise MediaError("This image is animated; choose a still photo.")
        orientation = _orientation(img)
        if fmt == "JPEG":
            # Decode at 1/8 scale: every byte of the entropy-coded data is
            # still read (so truncation fails), in a fraction of the memory.
            img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
        img.load()
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt, content_type=IMAGE_CONTENT_TYPES[fmt])


def make_thumbnail(image_path, out_path, *, max_size: tuple[int, int] = (480, 480)) -> Path:
    """A small WebP (or JPEG if out_path ends in .jpg/.jpeg) of the picture,
    turned the way its EXIF orientation says, no larger than max_size."""
    out_path = Path(out_path)
    with _open_image(image_path) as img:
        if img.format == "JPEG":
            side = max(max_size)
            img.draft("RGB", (side, side))
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(
                "This image could not be read to the end; it may be damaged or cut short."
            ) from exc
        pic = ImageOps.exif_transpose(img)
    has_alpha = pic.mode in ("RGBA", "LA", "PA") or (pic.mode == "P" and "transparency" in pic.info)
    pic = pic.convert("RGBA" if has_alpha else "RGB")
    pic.thumbnail(max_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    _save_small(pic, out_path)
    return out_path


def _save_small(pic: Image.Image, out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() in (".jpg", ".jpeg"):
        pic.convert("RGB").save(out_path, format="JPEG", quality=82, optimize=True)
    else:
        pic.save(out_path, format="WEBP", quality=80, method=4)


# --- audio and video: opening ----------------------------------------------------


@contextmanager
def _open_av(
    path, demuxers: tuple[str, ...], not_ours: str
) -> Iterator[av.container.InputContainer]:
    path = Path(path).resolve()  # absolute, so the name can never read as "proto:..."
    if not path.is_file():
        raise FileNotFoundError(path)
    options = {
        "protocol_whitelist": "file",
        "format_whitelist": ",".join(demuxers),
        "enable_drefs": "0",
        "max_streams": str(MAX_STREAMS + 1),
    }
    try:
        container = av.open(str(path), mode="r", container_options=options)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, av.error.InvalidDataError):
            raise MediaError(_not_ours_or_damaged(path, demuxers, not_ours)) from exc
        raise MediaError(not_ours) from exc
    try:
        yield container
    finally:
        container.close()


def _not_ours_or_damaged(path: Path, demuxers: tuple[str, ...], not_ours: str) -> str:
    """One of ours by its first bytes, yet unreadable (an MP4 cut before its
    index, say): say so, rather than "not a file we can read"."""
    if _sniff(path) in demuxers:
        return "This file could not be read; it may be damaged or cut short."
    return not_ours


def _sniff(path: Path) -> str | None:
    """Which of our demuxers a file's first bytes point to (only to word an
    error; FFmpeg itself picks the demuxer, within the allow-list)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:3] == b"ID3":
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mov"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


def _codec_name(stream) -> str:
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _is_cover_art(stream) -> bool:
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


@dataclass
class _Extent:
    """How far a stream's packets reach, in its own time base."""

    time_base: Fraction
    start: int | None = None
    end: int | None = None
    summed: int = 0

    def add(self, packet) -> None:
        ts = packet.pts if packet.pts is not None else packet.dts
        duration = packet.duration or 0
        self.summed += max(0, duration)
        if ts is None:
            return
        self.start = ts if self.start is None else min(self.start, ts)
        self.end = ts + duration if self.end is None else max(self.end, ts + duration)

    def seconds(self, stream_start: int | None) -> float:
        spanned = 0.0
        if self.end is not None:
            start = stream_start if stream_start is not None else self.start
            spanned = float((self.end - start) * self.time_base)
        return max(spanned, float(self.summed * self.time_base))


def _scan(container, measure: list, decode) -> tuple[float, object]:
    """Demux every packet of the `measure` streams (cheap: nothing is decoded)
    to learn how far they reach; decode the first packets of `decode` to prove
    they decode. Returns (measured seconds, first decoded frame)."""
    extents = {s.index: _Extent(s.time_base) for s in measure}
    decoded = 0
    first_frame = None
    try:
        for packet in container.demux(*measure):
            if packet.size == 0 and packet.pts is None:
                continue  # the flush packet at the end
            extents[packet.stream.index].add(packet)
            if packet.stream.index == decode.index and (
                decoded < DECODE_PACKETS
                or (first_frame is None and decoded < DECODE_PACKETS_HARD_CAP)
            ):
                decoded += 1
                for frame in packet.decode():
                    if first_frame is None:
                        first_frame = frame
        if first_frame is None:
            for frame in decode.codec_context.decode(None):
                first_frame = frame
                break
    except (av.error.FFmpegError, OSError, ValueError, MemoryError) as exc:
        raise MediaError(_damaged(decode.type)) from exc
    if first_frame is None:
        raise MediaError(_damaged(decode.type))
    measured = max((extents[s.index].seconds(s.start_time) for s in measure), default=0.0)
    return measured, first_frame


def _damaged(kind: str) -> str:
    what = "audio" if kind == "audio" else "video"
    return f"This {what} could not be decoded; the file may be damaged or cut short."


def _declared_seconds(container, stream) -> float | None:
    """The length the file's header claims, if it claims one."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream is not None and stream.duration:
        return float(stream.duration * stream.time_base)
    return None


def _settle_duration(declared: float | None, measured: float, kind: str) -> float:
    """The header's (exact, gapless-aware) length when the packets agree with
    it; the packets' length when the header understates it; refusal when the
    packets fall well short of what the header promises (a cut-short file)."""
    if declared is None:
        return measured
    slack = max(0.5, 0.02 * declared)
    if measured < declared - slack:
        raise MediaError(
            f"This {kind} file seems to be cut short: it says it is "
            f"{format_duration(declared)} long, but only {format_duration(measured)} "
            "of it is there. Upload the complete file."
        )
    if measured > declared + slack:
        return measured  # the header understates: bill what is there
    if measured < declared - 0.05:
        return measured  # slightly short of the header: a little is missing
    # Intact files measure a hair longer than their header (encoder delay and
    # padding are in the packets); the header's length is the exact one.
    return declared


def _check_length(duration: float, max_seconds: float | None, kind: str) -> None:
    if duration < MIN_SECONDS:
        raise MediaError(
            f"This {kind} is too short ({duration:.1f} s); it must last at least "
            f"{MIN_SECONDS:g} seconds."
        )
    if max_seconds is not None and duration > max_seconds + LIMIT_GRACE_SECONDS:
        # Never "10:00 long; the longest is 10:00": show the next second up.
        shown = max(duration, math.floor(max_seconds) + 1)
        raise MediaError(
            f"This {kind} is {format_duration(shown)} long; the longest we accept is "
            f"{format_duration(max_seconds)}."
        )


def _wav_declared_seconds(path: Path) -> float | None:
    """The length a WAV's data chunk declares (FFmpeg clamps it to the file
    size, which would hide a cut). None for streamed WAVs that leave it open."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        for _ in range(64):  # chunks before "data": fmt, LIST, fact, bext...
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind == b"data":
                if not byte_rate or size in (0, 0xFFFFFFFF):
                    return None
                return size / byte_rate
            body = fh.read(min(size, 64)) if kind == b"fmt " else b""
            if len(body) >= 12:
                byte_rate = int.from_bytes(body[8:12], "little")
            fh.seek(size - len(body) + (size & 1), 1)
    return None


def _mp3_has_length_tag(path: Path) -> bool:
    """Whether an MP3 carries a Xing/Info/VBRI tag (a real frame count).
    Without one, FFmpeg's duration is only an estimate from the bitrate, so it
    is no claim to hold the packets to. Reads at most a few KB."""
    with open(path, "rb") as fh:
        offset = 0
        for _ in range(4):  # ID3v2 tags (cover art and all) come first
            fh.seek(offset)
            head = fh.read(10)
            if head[:3] != b"ID3" or len(head) < 10:
                break
            size = 0
            for byte in head[6:10]:
                size = (size << 7) | (byte & 0x7F)
            offset += 10 + size + (10 if head[5] & 0x10 else 0)
        fh.seek(offset)
        first = fh.read(4096)
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


# --- audio -----------------------------------------------------------------------

_AUDIO_CONTAINERS = {
    "mp3": ("mp3", "audio/mpeg"),
    "wav": ("wav", "audio/wav"),
    "mov": ("m4a", "audio/mp4"),
    "ogg": ("ogg", "audio/ogg"),
    "flac": ("flac", "audio/flac"),
    "aac": ("aac", "audio/aac"),
}


def probe_audio(path, *, max_seconds: float | None = 600) -> AudioInfo:
    """Decode the start of the one sound track, measure the whole of it.

    Refuses (MediaError): anything but MP3, WAV, M4A/AAC, OGG (Vorbis/Opus) or
    FLAC by content; playlists; more than one sound track; real video (cover
    art in MP3/M4A is ignored); audio that does not decode; a file cut short of
    the length its header states; less than MIN_SECONDS; more than max_seconds.
    """
    path = Path(path)
    with _open_av(path, AUDIO_DEMUXERS, NOT_AUDIO) as container:
        demuxer = container.format.name.split(",")[0]
        streams = list(container.streams)
        if len(streams) > MAX_STREAMS:
            raise MediaError(NOT_AUDIO)
        audio = [s for s in streams if s.type == "audio"]
        video = [s for s in streams if s.type == "video" and not _is_cover_art(s)]
        if video:
            raise MediaError(
                "This file holds video as well as sound; upload just the sound "
                "(MP3, WAV, M4A/AAC, OGG, FLAC)."
            )
        if not audio:
            raise MediaError(_not_ours_or_damaged(path, AUDIO_DEMUXERS, NOT_AUDIO))
        if len(audio) > 1:
            raise MediaError(
                f"This file has {len(audio)} sound tracks; we accept files with exactly one."
            )
        stream = audio[0]
        codec = _codec_name(stream)
        if codec not in AUDIO_CODECS and not codec.startswith("pcm_"):
            raise MediaError(NOT_AUDIO)
        measured, frame = _scan(container, [stream], stream)
        declared = _declared_seconds(container, stream)
        if demuxer == "mp3" and not _mp3_has_length_tag(path):
            declared = None
        elif demuxer == "wav":
            declared = _wav_declared_seconds(path)
        duration = _settle_duration(declared, measured, "audio")
        if codec == "opus" and demuxer == "ogg":
            # FFmpeg's Ogg lengths count Opus's pre-skip, which decoders drop.
            duration -= (stream.codec_context.initial_padding or 0) / 48000
        sample_rate = frame.sample_rate or stream.codec_context.sample_rate
        channels = frame.layout.nb_channels or stream.codec_context.layout.nb_channels
    _check_length(duration, max_seconds, "audio")
    container_name, content_type = _AUDIO_CONTAINERS[demuxer]
    return AudioInfo(
        duration=round(duration, 3),
        codec=codec,
        container=container_name,
        sample_rate=int(sample_rate),
        channels=int(channels),
        content_type=content_type,
    )


# --- video -----------------------------------------------------------------------


def _video_container(container, codecs: set[str]) -> tuple[str, str]:
    demuxer = container.format.name.split(",")[0]
    if demuxer == "mov":
        if container.metadata.get("major_brand", "").strip() == "qt":
            return "mov", "video/quicktime"
        return "mp4", "video/mp4"
    if codecs <= {"vp8", "vp9", "av1", "opus", "vorbis"}:
        return "webm", "video/webm"
    return "mkv", "video/x-matroska"


def _probe_video(path, *, max_seconds: float | None, max_width: int, max_height: int) -> VideoInfo:
    with _open_av(path, VIDEO_DEMUXERS, NOT_VIDEO) as container:
        streams = list(container.streams)
        if len(streams) > MAX_STREAMS:
            raise MediaError(NOT_VIDEO)
        video = [s for s in streams if s.type == "video" and not _is_cover_art(s)]
        audio = [s for s in streams if s.type == "audio"]
        if not video:
            raise MediaError(
                "This file has no picture; for sound alone, use an audio field."
                if audio
                else _not_ours_or_damaged(Path(path), VIDEO_DEMUXERS, NOT_VIDEO)
            )
        if len(video) > 1:
            raise MediaError(
                f"This file has {len(video)} video tracks; we accept files with exactly one."
            )
        stream = video[0]
        codec = _codec_name(stream)
        if codec not in VIDEO_CODECS:
            raise MediaError(NOT_VIDEO)
        stream.codec_context.thread_count = 1  # a few frames: no thread start-up, no delay
        audio_codec = _codec_name(audio[0]) if audio else None
        measured, frame = _scan(container, [stream, *audio[:1]], stream)
        duration = _settle_duration(_declared_seconds(container, stream), measured, "video")
        width, height = frame.width, frame.height
        if abs(frame.rotation) == 90:
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        names = _video_container(container, {codec, audio_codec or codec})
    if min(width, height) < MIN_VIDEO_SIDE:
        raise MediaError(
            f"This video is only {width}×{height} pixels; it must be at least "
            f"{MIN_VIDEO_SIDE}×{MIN_VIDEO_SIDE}."
        )
    long_side, short_side = max(width, height), min(width, height)
    if long_side > max(max_width, max_height) or short_side > min(max_width, max_height):
        raise MediaError(
            f"This video is {width}×{height} pixels; the largest we accept is "
            f"{max_width}×{max_height}."
        )
    _check_length(duration, max_seconds, "video")
    return VideoInfo(
        duration=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        video_codec=codec,
        audio_codec=audio_codec,
        container=names[0],
        content_type=names[1],
    )


def probe_video(
    path, *, max_seconds: float | None = 600, max_width: int = 3840, max_height: int = 2160
) -> VideoInfo:
    """Decode the first frames of the one video track, measure the whole file.

    MP4, MOV, WebM or MKV by content; H.264, HEVC, VP8, VP9, AV1 or MPEG-4
    video; at most one sound track is measured (its codec is reported, not
    checked, as a dub replaces it). Sizes are as displayed (a phone's rotated
    portrait video is taller than wide) and may be either way round within
    max_width×max_height.
    """
    return _probe_video(path, max_seconds=max_seconds, max_width=max_width, max_height=max_height)


def probe_output_video(path) -> VideoInfo:
    """Measure a provider's finished video: its duration (what is billed) and
    resolution. Same checks as an upload, without the upload's length limit."""
    return _probe_video(path, max_seconds=None, max_width=7680, max_height=4320)


def poster_frame(video_path, out_path, *, at_seconds: float = 0.5, max_width: int = 640) -> Path:
    """Save one frame from about at_seconds (the last one if the video is
    shorter) as a small WebP, or JPEG if out_path ends in .jpg/.jpeg."""
    out_path = Path(out_path)
    with _open_av(video_path, VIDEO_DEMUXERS, NOT_VIDEO) as container:
        video = [s for s in container.streams.video if not _is_cover_art(s)]
        if not video:
            raise MediaError(NOT_VIDEO)
        stream = video[0]
        chosen = None
        try:
            if at_seconds > 0:
                try:
                    container.seek(int(at_seconds * av.time_base), backward=True)
                except av.error.FFmpegError:
                    container.seek(0)
            for count, frame in enumerate(container.decode(stream)):
                chosen = frame
                if frame.time is None or frame.time >= at_seconds or count > 600:
                    break
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if chosen is None:
                raise MediaError(_damaged("video")) from exc
        if chosen is None:
            raise MediaError(_damaged("video"))
        pic = chosen.to_image()
        if chosen.rotation:
            pic = pic.rotate(chosen.rotation, expand=True)
    if pic.width > max_width:
        pic = pic.resize(
            (max_width, max(1, round(pic.height * max_width / pic.width))),
            Image.Resampling.LANCZOS,
        )
    _save_small(pic, out_path)
    return out_path
