"""Uploads are checked by decoding them, not by their names, and measured.

Every file here is made on the fly by tests/media_factory.py.
"""

import av
import pytest
from PIL import Image

from jobs.files import media
from jobs.files.media import MediaError
from tests.media_factory import (
    make_audio,
    make_image,
    make_image_bomb,
    make_text_file,
    make_truncated,
    make_video,
)

NOT_AUDIO = "not an audio file we can read"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 2-second H.264 + AAC MP4, 640x360 at 15 fps."""
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 2.0)


# --- images ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pil_format", "content_type"),
    [("png", "PNG", "image/png"), ("jpeg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")],
)
def test_each_image_format_is_accepted_and_measured(tmp_path, fmt, pil_format, content_type):
    path = make_image(tmp_path / f"photo.{fmt}", 640, 480, fmt=fmt)

    info = media.probe_image(path)

    assert info == media.ImageInfo(
        width=640, height=480, format=pil_format, content_type=content_type
    )


def test_a_png_named_jpg_is_accepted_as_png(tmp_path):
    path = make_image(tmp_path / "holiday.jpg", 300, 200, fmt="png")

    info = media.probe_image(path)

    assert (info.format, info.content_type) == ("PNG", "image/png")


def test_a_text_file_named_png_is_refused(tmp_path):
    with pytest.raises(MediaError, match="not an image we can read"):
        media.probe_image(make_text_file(tmp_path / "photo.png"))


def test_audio_passed_as_an_image_is_refused(tmp_path):
    with pytest.raises(MediaError, match="not an image we can read"):
        media.probe_image(make_audio(tmp_path / "photo.jpg", 1.0))


def test_a_truncated_jpeg_is_refused(tmp_path):
    whole = make_image(tmp_path / "whole.jpg", 640, 480, fmt="jpeg")
    cut = make_truncated(whole, tmp_path / "cut.jpg", whole.stat().st_size // 2)

    with pytest.raises(MediaError, match="could not be read to the end"):
        media.probe_image(cut)


def test_an_image_bomb_is_refused_from_its_header(tmp_path):
    bomb = make_image_bomb(tmp_path / "bomb.png")  # 30000x30000 in ~110 KB

    with pytest.raises(MediaError) as caught:
        media.probe_image(bomb)

    assert str(caught.value) == (
        "This image is too large: 900 megapixels; the limit is 40 megapixels."
    )


def test_an_image_between_the_limit_and_pillows_hard_limit_is_refused_too(tmp_path):
    # 49 MP: above MAX_IMAGE_PIXELS (Pillow only warns) but below twice it
    # (where Pillow raises). The warning must count as a refusal.
    bomb = make_image_bomb(tmp_path / "big.png", 7000, 7000)

    with pytest.raises(MediaError, match="49 megapixels"):
        media.probe_image(bomb)
    with pytest.raises(MediaError, match="too large"):
        media.make_thumbnail(bomb, tmp_path / "thumb.webp")


def test_an_animated_image_is_refused(tmp_path):
    frames = [Image.new("RGB", (128, 128), color) for color in ("red", "blue")]
    path = tmp_path / "wave.webp"
    frames[0].save(path, format="WEBP", save_all=True, append_images=frames[1:], duration=100)

    with pytest.raises(MediaError, match="animated"):
        media.probe_image(path)


def test_a_tiny_image_is_refused(tmp_path):
    with pytest.raises(MediaError, match="at least 64×64"):
        media.probe_image(make_image(tmp_path / "icon.png", 32, 32))


def test_a_photo_rotated_by_exif_is_measured_and_thumbnailed_upright(tmp_path):
    # Stored 640x480 landscape, EXIF orientation 6: displayed as 480x640.
    path = make_image(tmp_path / "phone.jpg", 640, 480, fmt="jpeg", exif_orientation=6)

    info = media.probe_image(path)
    thumb = media.make_thumbnail(path, tmp_path / "thumb.webp")

    assert (info.width, info.height) == (480, 640)
    with Image.open(thumb) as img:
        assert img.format == "WEBP"
        assert img.size == (360, 480)


def test_a_thumbnail_is_a_small_valid_webp(tmp_path):
    path = make_image(tmp_path / "photo.png", 1600, 1200, fmt="png")

    thumb = media.make_thumbnail(path, tmp_path / "thumb.webp", max_size=(480, 480))

    with Image.open(thumb) as img:
        img.load()
        assert img.format == "WEBP"
        assert img.size == (480, 360)
    assert thumb.stat().st_size < 40_000


# --- audio -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "codec", "container", "content_type"),
    [
        ("mp3", "mp3", "mp3", "audio/mpeg"),
        ("wav", "pcm_s16le", "wav", "audio/wav"),
        ("m4a", "aac", "m4a", "audio/mp4"),
        ("ogg", "opus", "ogg", "audio/ogg"),
        ("flac", "flac", "flac", "audio/flac"),
    ],
)
@pytest.mark.parametrize("seconds", [1.3, 7.77])
def test_each_audio_format_is_accepted_with_its_measured_duration(
    tmp_path, fmt, codec, container, content_type, seconds
):
    path = make_audio(tmp_path / f"voice.{fmt}", seconds, fmt=fmt)

    info = media.probe_audio(path)

    assert info.duration == pytest.approx(seconds, abs=0.1)
    assert (info.codec, info.container, info.content_type) == (codec, container, content_type)
    assert info.channels == 1
    assert info.sample_rate == (48000 if fmt == "ogg" else 16000)  # Opus decodes at 48 kHz


def test_stereo_audio_reports_its_decoded_rate_and_channels(tmp_path):
    path = make_audio(tmp_path / "music.m4a", 2.0, fmt="m4a", sample_rate=44100, channels=2)

    info = media.probe_audio(path)

    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_a_wav_named_mp3_is_measured_as_wav(tmp_path):
    path = make_audio(tmp_path / "voice.mp3", 2.0, fmt="wav")

    info = media.probe_audio(path)

    assert (info.container, info.content_type) == ("wav", "audio/wav")


def _without_id3(data: bytes) -> bytes:
    if data[:3] != b"ID3":
        return data
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return data[10 + size :]


def _decoded_seconds(path) -> float:
    """The ground truth: every sample FFmpeg decodes, start to end."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def test_a_constant_bitrate_mp3_without_a_xing_header_is_measured_by_its_frames(tmp_path):
    path = make_audio(tmp_path / "plain.mp3", 7.77, mp3_xing=False)

    info = media.probe_audio(path)

    assert info.duration == pytest.approx(7.77, abs=0.1)


def test_a_variable_bitrate_mp3_without_a_xing_header_is_measured_not_estimated(tmp_path):
    # No Xing/Info tag: FFmpeg can only estimate the length from the first
    # frames' bitrate, which is far too long here (8 kb/s, then 32 kb/s).
    # The probe measures what the frames cover instead.
    quiet = make_audio(tmp_path / "a.mp3", 1.0, mp3_xing=False, bitrate=8000)
    loud = make_audio(tmp_path / "b.mp3", 6.0, mp3_xing=False, bitrate=32000)
    path = tmp_path / "vbr.mp3"
    path.write_bytes(quiet.read_bytes() + _without_id3(loud.read_bytes()))
    with av.open(str(path)) as container:
        estimate = container.duration / av.time_base
    truth = _decoded_seconds(path)

    info = media.probe_audio(path)

    assert truth == pytest.approx(7.0, abs=0.2)
    assert estimate > truth + 3  # the header alone would mislead
    assert info.duration == pytest.approx(truth, abs=0.1)


def test_mp3_cover_art_is_not_counted_as_video(tmp_path):
    path = make_audio(tmp_path / "song.mp3", 3.0, cover_art=True)

    info = media.probe_audio(path)

    assert info.duration == pytest.approx(3.0, abs=0.1)


def test_a_text_file_named_mp3_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(MediaError) as caught:
        media.probe_audio(make_text_file(tmp_path / "song.mp3"))

    assert str(caught.value) == (
        "This file is not an audio file we can read (MP3, WAV, M4A/AAC, OGG, FLAC)."
    )


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(MediaError, match=NOT_AUDIO):
        media.probe_audio(make_text_file(tmp_path / "song.mp3", ""))


def test_an_image_passed_as_audio_is_refused(tmp_path):
    with pytest.raises(MediaError, match=NOT_AUDIO):
        media.probe_audio(make_image(tmp_path / "song.mp3", fmt="png"))


def test_a_video_passed_as_audio_is_refused(clip):
    with pytest.raises(MediaError, match="holds video as well as sound"):
        media.probe_audio(clip)


def test_a_truncated_mp3_whose_header_states_its_length_is_refused(tmp_path):
    whole = make_audio(tmp_path / "whole.mp3", 10.0)  # LAME writes a Xing/Info tag
    cut = make_truncated(whole, tmp_path / "cut.mp3", whole.stat().st_size // 2)

    with pytest.raises(MediaError) as caught:
        media.probe_audio(cut)

    assert "cut short" in str(caught.value)
    assert "0:10" in str(caught.value) and "0:05" in str(caught.value)


def test_a_truncated_mp3_without_a_length_header_is_measured_by_what_remains(tmp_path):
    # Nothing in such a file promises more than it holds: cut between frames it
    # is a valid, shorter MP3 that decodes and plays, so it is accepted at the
    # length that is there (what the provider will render and bill).
    whole = make_audio(tmp_path / "whole.mp3", 10.0, mp3_xing=False)
    cut = make_truncated(whole, tmp_path / "cut.mp3", whole.stat().st_size // 2)

    info = media.probe_audio(cut)

    assert info.duration == pytest.approx(5.0, abs=0.15)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_other_truncated_audio_with_a_stated_length_is_refused(tmp_path, fmt):
    whole = make_audio(tmp_path / f"whole.{fmt}", 10.0, fmt=fmt)
    cut = make_truncated(whole, tmp_path / f"cut.{fmt}", whole.stat().st_size // 2)

    with pytest.raises(MediaError, match="cut short"):
        media.probe_audio(cut)


def test_a_truncated_m4a_is_refused_as_damaged(tmp_path):
    whole = make_audio(tmp_path / "whole.m4a", 10.0, fmt="m4a")
    cut = make_truncated(whole, tmp_path / "cut.m4a", whole.stat().st_size - 200)

    with pytest.raises(MediaError, match="damaged or cut short"):
        media.probe_audio(cut)


def test_eleven_minutes_of_audio_is_refused_showing_both_lengths(eleven_minutes):
    with pytest.raises(MediaError) as caught:
        media.probe_audio(eleven_minutes, max_seconds=600)

    assert str(caught.value) == "This audio is 11:00 long; the longest we accept is 10:00."


def test_eleven_minutes_is_measured_when_the_limit_allows_it(eleven_minutes):
    info = media.probe_audio(eleven_minutes, max_seconds=None)

    assert info.duration == pytest.approx(660, abs=0.1)


def test_audio_at_the_limit_is_accepted_and_just_over_it_refused(tmp_path):
    at_limit = make_audio(tmp_path / "at.wav", 3.0, fmt="wav")
    over = make_audio(tmp_path / "over.wav", 3.6, fmt="wav")

    assert media.probe_audio(at_limit, max_seconds=3).duration == pytest.approx(3.0)
    with pytest.raises(MediaError) as caught:
        media.probe_audio(over, max_seconds=3)
    assert str(caught.value) == "This audio is 0:04 long; the longest we accept is 0:03."


def test_near_silent_length_audio_is_refused(tmp_path):
    with pytest.raises(MediaError, match="too short"):
        media.probe_audio(make_audio(tmp_path / "blip.mp3", 0.3))


# --- the playlist trick ----------------------------------------------------------


def _playlists(tmp_path):
    """Files that, opened naively, make FFmpeg read another local file
    (secret.mp3, 4 s) and present it as their own content."""
    make_audio(tmp_path / "secret.mp3", 4.0)
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4.0,\nsecret.mp3\n#EXT-X-ENDLIST\n"
    concat = tmp_path / "concat.mp3"
    concat.write_text("ffconcat version 1.0\nfile secret.mp3\n")
    m3u8 = tmp_path / "list.m3u8"
    m3u8.write_text(hls)
    m3u8_as_mp3 = tmp_path / "list.mp3"
    m3u8_as_mp3.write_text(hls)
    return {"ffconcat named .mp3": concat, "HLS .m3u8": m3u8, "HLS named .mp3": m3u8_as_mp3}


def _seconds_read_naively(path, **options) -> float:
    with av.open(str(path), **options) as container:
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size]
        return float(sum(p.duration for p in packets) * stream.time_base)


def test_the_playlist_attack_is_real_without_the_demuxer_allow_list(tmp_path):
    # The control: plain FFmpeg follows these playlists into secret.mp3, and
    # allowing only the "file" protocol does not stop it (the other file is a
    # local file). FFmpeg itself refuses HLS under a non-playlist name.
    files = _playlists(tmp_path)
    only_file = {"container_options": {"protocol_whitelist": "file"}}

    for name in ("ffconcat named .mp3", "HLS .m3u8"):
        assert _seconds_read_naively(files[name]) == pytest.approx(4.0, abs=0.2)
        assert _seconds_read_naively(files[name], **only_file) == pytest.approx(4.0, abs=0.2)


@pytest.mark.parametrize("name", ["ffconcat named .mp3", "HLS .m3u8", "HLS named .mp3"])
def test_a_playlist_disguised_as_audio_is_refused(tmp_path, name):
    path = _playlists(tmp_path)[name]

    with pytest.raises(MediaError, match=NOT_AUDIO):
        media.probe_audio(path)
    with pytest.raises(MediaError, match="not a video we can read"):
        media.probe_video(path)


# --- video -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "container", "content_type", "video_codec", "audio_codec"),
    [
        ("mp4", "mp4", "video/mp4", "h264", "aac"),
        ("mov", "mov", "video/quicktime", "h264", "aac"),
        ("mkv", "mkv", "video/x-matroska", "h264", "aac"),
        ("webm", "webm", "video/webm", "vp8", "opus"),
    ],
)
def test_each_video_format_is_accepted_and_measured(
    tmp_path, fmt, container, content_type, video_codec, audio_codec
):
    path = make_video(tmp_path / f"clip.{fmt}", 2.0, 320, 240, fps=15, fmt=fmt)

    info = media.probe_video(path)

    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert (info.width, info.height, info.fps) == (320, 240, 15.0)
    assert (info.container, info.content_type) == (container, content_type)
    assert (info.video_codec, info.audio_codec) == (video_codec, audio_codec)


def test_a_silent_video_is_accepted_without_an_audio_codec(tmp_path):
    path = make_video(tmp_path / "silent.mp4", 1.0, 320, 240, with_audio=False)

    info = media.probe_video(path)

    assert info.audio_codec is None
    assert info.duration == pytest.approx(1.0, abs=0.1)


def test_a_video_over_the_length_limit_is_refused(clip):
    with pytest.raises(MediaError) as caught:
        media.probe_video(clip, max_seconds=1)

    assert str(caught.value) == "This video is 0:02 long; the longest we accept is 0:01."


def test_a_video_over_the_size_limit_is_refused_either_way_round(clip):
    with pytest.raises(MediaError, match="640×360 pixels; the largest we accept is 320×240"):
        media.probe_video(clip, max_width=320, max_height=240)
    # A portrait limit of 360x640 still fits a 640x360 landscape clip.
    assert media.probe_video(clip, max_width=360, max_height=640).width == 640


@pytest.mark.parametrize(
    "make",
    [
        lambda d: make_text_file(d / "clip.mp4"),
        lambda d: make_image(d / "clip.mp4", fmt="jpeg"),
        lambda d: make_audio(d / "clip.mp4", 1.0),
    ],
    ids=["text", "image", "mp3"],
)
def test_things_that_are_not_video_are_refused(tmp_path, make):
    with pytest.raises(MediaError, match="not a video we can read"):
        media.probe_video(make(tmp_path))


def test_an_audio_only_mp4_is_refused_as_a_video(tmp_path):
    with pytest.raises(MediaError, match="no picture"):
        media.probe_video(make_audio(tmp_path / "voice.m4a", 1.0, fmt="m4a"))


def test_a_truncated_mp4_is_refused_as_damaged(tmp_path, clip):
    cut = make_truncated(clip, tmp_path / "cut.mp4", clip.stat().st_size // 2)

    with pytest.raises(MediaError, match="damaged or cut short"):
        media.probe_video(cut)


def test_a_truncated_webm_is_refused_as_cut_short(tmp_path):
    whole = make_video(tmp_path / "whole.webm", 4.0, 320, 240, fmt="webm")
    cut = make_truncated(whole, tmp_path / "cut.webm", whole.stat().st_size // 2)

    with pytest.raises(MediaError, match="cut short"):
        media.probe_video(cut)


def test_a_providers_output_is_measured_without_the_upload_limit(clip):
    info = media.probe_output_video(clip)

    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert (info.width, info.height) == (640, 360)


def test_a_providers_broken_output_is_refused(tmp_path):
    with pytest.raises(MediaError):
        media.probe_output_video(make_text_file(tmp_path / "output.mp4", "<html>oops</html>"))


@pytest.mark.parametrize("suffix, pil_format", [(".webp", "WEBP"), (".jpg", "JPEG")])
def test_a_poster_frame_is_a_small_valid_image(tmp_path, clip, suffix, pil_format):
    poster = media.poster_frame(clip, tmp_path / f"poster{suffix}", max_width=320)

    with Image.open(poster) as img:
        img.load()
        assert img.format == pil_format
        assert img.size == (320, 180)
    assert poster.stat().st_size < 30_000


def test_a_poster_frame_past_the_end_uses_the_last_frame(tmp_path, clip):
    poster = media.poster_frame(clip, tmp_path / "poster.webp", at_seconds=60)

    with Image.open(poster) as img:
        assert img.size == (640, 360)


def test_a_phone_video_turned_by_its_matrix_is_measured_and_postered_upright(tmp_path):
    # Stored 320x240 with the blue dot along the top edge; the track matrix
    # says "turn 90° clockwise", so it shows as 240x320 with the dot on the right.
    path = make_video(tmp_path / "phone.mp4", 1.0, 320, 240, display_rotation=90)

    info = media.probe_video(path)
    poster = media.poster_frame(path, tmp_path / "poster.webp", at_seconds=0.5)

    assert (info.width, info.height) == (240, 320)
    with Image.open(poster) as img:
        img = img.convert("RGB")
        assert img.size == (240, 320)
        right_edge = [img.getpixel((215, y)) for y in range(0, 320, 4)]
        left_edge = [img.getpixel((24, y)) for y in range(0, 320, 4)]
    assert any(_is_blue(px) for px in right_edge)
    assert not any(_is_blue(px) for px in left_edge)


def _is_blue(rgb) -> bool:
    return rgb[2] > 150 and rgb[0] < 90


# --- helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (9.4, "0:09"), (59.6, "1:00"), (600, "10:00"), (662.4, "11:02"), (3600, "60:00")],
)
def test_format_duration(seconds, text):
    assert media.format_duration(seconds) == text


def test_media_errors_are_value_errors():
    assert issubclass(MediaError, ValueError)
