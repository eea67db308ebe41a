"""lipsync.studio end to end over real HTTP, in each of its three modes: the
studio on a live server, the sandbox provider fetching the inputs from it by
their signed links, the poll loop and archive as the cluster runs them. And
the provider key: it shows up in no log, page or error message."""

import importlib
import math
from pathlib import Path

import av
import pytest
import requests
from django.urls import reverse
from PIL import ImageChops

from jobs.credits.pricing import rate_current
from jobs.files.storage import local_copy
from jobs.models import EntryKind, Job, Rate
from tests.pipeline_support import (
    GRANT,
    LIPSYNC_JOBS,
    SANDBOX_KEY,
    assert_playable,
    create_dub,
    create_lipsync_dialog,
    create_talking_photo,
    every_log_record_into,
    ledger_check,
    lipsync_poll_calls,
    lipsync_requests,
    lipsync_submit_calls,
    run_until_terminal,
    video,
)

SEEDED = importlib.import_module("jobs.migrations.0010_lipsync_studio_real_rates")


@pytest.fixture
def sent(pipeline, settings):
    """What lipsync.studio has received so far, when called: (model, JSON body,
    whether the key was right) per submission. Webhooks off (the studio is on
    plain http): submissions are polled."""
    settings.WEBHOOKS_ALLOW_HTTP = False
    return lambda: lipsync_requests(pipeline)


def seeded_rate(model: str, resolution: str) -> Rate:
    """The rate in force, the row migration 0010 seeded: per second, 5 s minimum."""
    rate = rate_current(provider="lipsync_studio", model=model, resolution=resolution)
    [(credits, usd)] = [(c, u) for r, c, u in SEEDED.RATES if r == resolution]
    assert (rate.unit_seconds, rate.min_seconds, rate.credits_per_unit, rate.usd_per_unit) == (
        1,
        5,
        credits,
        usd,
    )
    return rate


def assert_sent_once(pipeline, sent, job: Job, model: str, form: dict) -> dict[str, str]:
    """One POST to /api/v1/<model>, answered 200, with exactly {"formState": form}
    (input URLs aside) and the Bearer key; its input URLs are the studio's links
    to this job's inputs. Returns {formState field: URL}."""
    assert [(c.path, c.status) for c in lipsync_submit_calls(pipeline)] == [
        (f"/api/v1/{model}", 200)
    ]
    [(got_model, body, key_ok)] = sent()
    assert got_model == model
    assert key_ok is True  # the sandbox's own key, SANDBOX_KEY
    assert list(body) == ["formState"]  # no webhook: the studio is not on https
    urls = {name: value for name, value in body["formState"].items() if name not in form}
    assert body["formState"] == {**urls, **form}
    [task] = pipeline.sandbox.tasks.values()
    assert job.provider_task_id == task.id
    assert {name: url for name, (_role, url) in task.inputs.items()} == urls
    inputs = {inp.role: inp for inp in job.inputs.all()}
    for name, (role, url) in task.inputs.items():
        assert url.startswith(pipeline.studio_url + "/inputs/"), name
        # Each field points at the input of its own role.
        assert url.endswith("/" + Path(inputs[role].file.name).name), name
    return urls


def assert_charged(pipeline, done: Job, model: str, resolution: str, seconds: float) -> int:
    """Charged the whole seconds (at least 5) x the seeded rate, held and captured once."""
    rate = seeded_rate(model, resolution)
    price = max(5, math.ceil(round(seconds, 3))) * rate.credits_per_unit
    assert done.credits_held == price
    assert done.credits_charged == price
    assert pipeline.entries(done) == [(EntryKind.HOLD, price), (EntryKind.CAPTURE, price)]
    balance = pipeline.studio_balance()
    assert (balance.balance, balance.held, balance.available) == (GRANT - price, 0, GRANT - price)
    assert "Ledger OK" in ledger_check()
    return price


def assert_polled_fine(pipeline, done: Job) -> None:
    polls = lipsync_poll_calls(pipeline)
    assert polls, "the job was never polled"
    assert {(c.method, c.path, c.status) for c in polls} == {
        ("GET", LIPSYNC_JOBS + done.provider_task_id, 200)
    }


def assert_links_dead(urls: dict[str, str]) -> None:
    """The provider's links to the inputs stop working once the job has ended."""
    for url in urls.values():
        assert requests.get(url, timeout=5).status_code == 404


# --- talking photo: /api/v1/lipsync-image ----------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "seconds", "credits"),
    [
        ("480p", 2.0, 10),  # under the 5 s minimum: 5 s at 2 credits
        ("720p", 5.6, 24),  # 5.6 s: 6 whole seconds at 4 credits
    ],
)
def test_a_talking_photo_becomes_a_playable_video_charged_for_its_audio(
    pipeline, sent, resolution, seconds, credits
):
    job = create_talking_photo(
        pipeline, seconds=seconds, resolution=resolution, prompt="a calm newsreader", seed=7
    )

    assert job.state == "queued"
    assert (job.provider, job.provider_model) == ("lipsync_studio", "lipsync-image")
    job.refresh_from_db()
    assert job.state == "processing", job.error

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    assert done.error == ""
    urls = assert_sent_once(
        pipeline,
        sent,
        done,
        "lipsync-image",
        {"resolution": resolution, "prompt": "a calm newsreader", "seed": 7},
    )
    assert set(urls) == {"image", "audio"}
    assert_polled_fine(pipeline, done)
    info = assert_playable(done, resolution, seconds)
    assert assert_charged(pipeline, done, "lipsync-image", resolution, info.duration) == credits
    assert_links_dead(urls)


def test_without_prompt_or_seed_the_form_holds_only_inputs_and_resolution(pipeline, sent):
    done = run_until_terminal(create_talking_photo(pipeline, seconds=1.2))

    assert done.state == "completed", done.error
    urls = assert_sent_once(pipeline, sent, done, "lipsync-image", {"resolution": "480p"})
    assert set(urls) == {"image", "audio"}
    assert_charged(pipeline, done, "lipsync-image", "480p", 1.2)


# --- video dub: /api/v1/lipsync-video ---------------------------------------------------------


def dot_x(frame: av.VideoFrame) -> float | None:
    """Where the moving blue dot of tests.media_factory.make_video is in a frame:
    its centre's x as a fraction of the width, or None if there is none."""
    image = frame.to_image()
    red, _green, blue = image.crop((0, 0, image.width, image.height // 4)).split()
    dot = ImageChops.multiply(
        blue.point(lambda v: 255 if v > 150 else 0), red.point(lambda v: 255 if v < 100 else 0)
    )
    box = dot.getbbox()
    return None if box is None else (box[0] + box[2]) / 2 / image.width


def dot_track(path) -> list[tuple[float, float | None]]:
    with av.open(str(path)) as container:
        return [(frame.time, dot_x(frame)) for frame in container.decode(video=0)]


@pytest.mark.parametrize(
    ("resolution", "video_seconds", "audio_seconds", "with_mask"),
    [
        ("720p", 2.4, 1.3, False),  # the video is cut to the audio
        ("480p", 1.0, 5.6, True),  # the video loops for the audio's length
    ],
    ids=["shorter-audio-720p", "longer-audio-480p-mask"],
)
def test_a_dub_puts_the_new_audio_on_the_videos_frames_and_bills_the_audio(
    pipeline, sent, resolution, video_seconds, audio_seconds, with_mask
):
    job = create_dub(
        pipeline,
        video_seconds=video_seconds,
        audio_seconds=audio_seconds,
        with_mask=with_mask,
        resolution=resolution,
    )
    assert (job.mode, job.provider_model) == ("video_dub", "lipsync-video")
    assert job.input_seconds == pytest.approx(audio_seconds, abs=0.1)  # the audio is billed

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    urls = assert_sent_once(pipeline, sent, done, "lipsync-video", {"resolution": resolution})
    assert set(urls) == ({"video", "audio", "mask_image"} if with_mask else {"video", "audio"})
    assert_polled_fine(pipeline, done)
    # As long as the new audio, whatever the video's length.
    info = assert_playable(done, resolution, audio_seconds)
    assert_charged(pipeline, done, "lipsync-video", resolution, info.duration)

    # Its pictures are the input video's, in time (looped past the video's end):
    # the dot is where it is in the input's frame shown at that moment.
    source = dot_track(video(pipeline, video_seconds))
    assert all(x is not None for _t, x in source)
    step = max(b - a for (_, a), (_, b) in zip(source, source[1:], strict=False))
    with local_copy(done.output.name) as path:
        output = dot_track(path)
    assert len(output) == pytest.approx(audio_seconds * info.fps, abs=3)
    for t, x in output:
        assert x is not None, f"no dot at {t:.2f} s"
        # The input's frame showing at t (or, rounding, the one before it).
        i = int((t % video_seconds) * 15 + 1e-6)
        nearest = min(abs(x - source[j % len(source)][1]) for j in (i - 1, i))
        assert nearest < 0.02, f"the picture at {t:.2f} s is not the input's"
    xs = [x for _t, x in output]
    if audio_seconds > video_seconds:
        assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) < -0.5  # back to the start
    else:
        assert xs == sorted(xs) and xs[-1] - xs[0] > 10 * step  # it moves, one pass
    assert_links_dead(urls)


# --- dialog: /api/v1/lipsync-image-multi ------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "left", "right", "order", "seconds", "credits"),
    [
        ("480p", 3.1, 5.7, "meanwhile", 5.7, 12),  # the longer clip: 6 s at 2
        ("480p", 3.1, 5.7, "sequential", 8.8, 18),  # both clips: 9 s at 2
        ("720p", 2.2, 1.2, "meanwhile", 2.2, 20),  # the 5 s minimum at 4
        ("720p", 2.2, 1.2, "sequential", 3.4, 20),  # still under the minimum
    ],
)
def test_a_dialog_through_lipsync_studio_lasts_and_costs_as_its_order_says(
    pipeline, sent, resolution, left, right, order, seconds, credits
):
    """Held for the order's length (the sum when they take turns, the longer
    clip when they speak at once); the sandbox renders that long a video, and
    the capture, measured on it, is the hold."""
    job = create_lipsync_dialog(
        pipeline,
        left=left,
        right=right,
        resolution=resolution,
        prompt="two friends",
        seed=3,
        dialog_order=order,
    )
    assert (job.provider, job.provider_model) == ("lipsync_studio", "lipsync-image-multi")
    assert job.dialog_order == order
    assert job.input_seconds == pytest.approx(seconds)
    assert job.credits_held == credits

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    urls = assert_sent_once(
        pipeline,
        sent,
        done,
        "lipsync-image-multi",
        {"order": order, "resolution": resolution, "prompt": "two friends", "seed": 3},
    )
    assert set(urls) == {"image", "left_audio", "right_audio"}
    assert_polled_fine(pipeline, done)
    info = assert_playable(done, resolution, seconds)
    assert assert_charged(pipeline, done, "lipsync-image-multi", resolution, info.duration) == (
        credits
    )
    # Both voices are in it: the left one on the left channel, the right on the right.
    with local_copy(done.output.name) as path, av.open(str(path)) as container:
        assert container.streams.audio[0].layout.name == "stereo"
    assert_links_dead(urls)


# --- the provider key is never shown ----------------------------------------------------------

WRONG_KEY = "sk_wrong_studio_key_for_the_sandbox_42"
KEYS = (SANDBOX_KEY, WRONG_KEY)


def test_the_provider_key_appears_in_no_log_page_or_error(pipeline, settings, caplog, alice):
    """A completed job (webhooks on, so that path runs too), a job the provider
    fails with a message quoting the key, and a job sent with a wrong key:
    every log record of every logger at DEBUG, the studio's pages and every
    job's error are searched for both keys."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    browser = pipeline.browser(alice)
    with every_log_record_into(caplog.handler):
        completed = run_until_terminal(create_talking_photo(pipeline, seconds=1.5))

        pipeline.sandbox.faults.update(
            {"task_fail": 1, "fail_message": f"Key {SANDBOX_KEY} may not render this"}
        )
        provider_failed = run_until_terminal(create_dub(pipeline, audio_seconds=1.2))

        settings.SANDBOX_API_KEY = WRONG_KEY
        refused = run_until_terminal(create_lipsync_dialog(pipeline, left=1.2, right=1.4))

        pages = {
            path: browser.get(pipeline.studio_url + path, timeout=10)
            for path in (
                reverse("studio"),
                reverse("studio") + "?mode=video_dub",
                reverse("studio_cards") + "?since=0",
                reverse("gallery"),
                reverse("gallery_detail", args=[completed.pk]),
                reverse("credits"),
            )
        }

    assert completed.state == "completed", completed.error
    assert provider_failed.state == "failed"
    assert provider_failed.error == "Key [redacted] may not render this"
    assert refused.state == "failed"
    assert refused.error.startswith("The provider refused this job")
    assert [c.status for c in lipsync_submit_calls(pipeline)] == [200, 200, 401]
    for job in Job.objects.all():
        assert not any(key in job.error for key in KEYS), job.pk

    for path, response in pages.items():
        # 286: the cards' "stop polling" (no job is live any more).
        assert response.status_code in (200, 286), path
        assert not any(key in response.text for key in KEYS), path
    # The pages do show the errors (the search above looked at them).
    for path in (reverse("studio"), reverse("studio_cards") + "?since=0"):
        assert "Key [redacted] may not render this" in pages[path].text
        assert "The provider refused this job" in pages[path].text

    records = caplog.records
    names = {record.name for record in records}
    # Everything was captured: the studio's own loggers at DEBUG, requests', the sandbox's.
    assert {
        "jobs.pipeline.lifecycle",
        "jobs.providers",
        "jobs.pipeline.webhooks",
        "jobs.providers.sandbox",
    } <= names
    assert any(r.name == "jobs.providers" and r.levelname == "DEBUG" for r in records)
    assert any(r.name.startswith("urllib3") for r in records)
    for record in records:
        if record.name == "jobs.providers.sandbox" and record.msg == "task %s failed: %s":
            continue  # the provider's own log of the message it was told to fail with
        text = caplog.handler.format(record)
        assert not any(key in text for key in KEYS), f"{record.name}: {text}"
