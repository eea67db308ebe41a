"""The two adapters against their pages (../shared/seeds/), over real local
HTTP: exact paths, headers and JSON bodies sent; answers mapped; errors sorted."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta

import pytest

from jobs.providers import adapters, catalogue
from jobs.providers.base import ProviderAdapter, SubmitRequest, TaskStatus, UnsupportedRequest
from jobs.providers.http import (
    ProviderError,
    ProviderMalformed,
    ProviderOutcomeUnknown,
    ProviderRefused,
    ProviderRejected,
)
from jobs.providers.joypix import JoyPixAdapter
from jobs.providers.lipsync_studio import LipsyncStudioAdapter, parse_webhook
from tests.providers.test_provider_http import KEY, Reply, ScriptedServer

IMG = "https://studio.example/in/face.png?sig=abc"
LEFT = "https://studio.example/in/left.mp3?sig=abc"
RIGHT = "https://studio.example/in/right.mp3?sig=abc"
AUDIO = "https://studio.example/in/voice.mp3?sig=abc"
VIDEO = "https://studio.example/in/clip.mp4?sig=abc"
MASK = "https://studio.example/in/mask.png?sig=abc"
OUT = "https://output.example/result.mp4"


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


def adapter(cls: type[ProviderAdapter], server: ScriptedServer) -> ProviderAdapter:
    return cls(base_url=server.url, api_key=KEY, connect_timeout=0.5, read_timeout=0.5)


def dialog(**kw) -> SubmitRequest:
    return SubmitRequest(
        **{
            "mode": "dialog",
            "resolution": "480p",
            "image_url": IMG,
            "left_audio_url": LEFT,
            "right_audio_url": RIGHT,
            # JoyPix takes no order and sends none (the JoyPix tests' exact bodies).
            "dialog_order": "meanwhile",
        }
        | kw
    )


def talking_photo(**kw) -> SubmitRequest:
    return SubmitRequest(
        **{"mode": "talking_photo", "resolution": "480p", "image_url": IMG, "audio_url": AUDIO} | kw
    )


def joypix_ok(task_id: str = "task_123456789", code: int = 0) -> Reply:
    # The page's example answer.
    return Reply(200, {"code": code, "message": "success", "data": {"task_id": task_id}})


def joypix_task(**data) -> Reply:
    return Reply(
        200,
        {
            "code": 0,
            "message": "success",
            "data": {
                "task_id": "task_123456789",
                "inputs": "...",
                "model": "motion-2-dialog",
                **data,
            },
        },
    )


# --- The catalogue and the adapters -------------------------------------------------------


def test_the_catalogue_lists_both_providers_with_their_facts():
    assert catalogue.provider_choices() == [
        ("joypix", "JoyPix"),
        ("lipsync_studio", "lipsync.studio"),
    ]
    assert dict(catalogue.JOYPIX.models) == {
        "dialog": "motion-2-dialog",
        "talking_photo": "motion-2",
    }
    assert dict(catalogue.LIPSYNC_STUDIO.models) == {
        "dialog": "lipsync-image-multi",
        "talking_photo": "lipsync-image",
        "video_dub": "lipsync-video",
    }
    assert catalogue.model_for("lipsync_studio", "video_dub") == "lipsync-video"
    assert catalogue.modes_of("joypix") == ("dialog", "talking_photo")
    assert catalogue.model_for("joypix", "talking_photo") == "motion-2"
    with pytest.raises(catalogue.NotOffered, match="JoyPix does not make video_dub"):
        catalogue.model_for("joypix", "video_dub")
    for facts in catalogue.PROVIDERS:
        assert (facts.rtf("480p"), facts.rtf("720p")) == (15.0, 25.0)
        assert facts.output_ttl == timedelta(hours=72)
    assert (catalogue.JOYPIX.supports_webhooks, catalogue.LIPSYNC_STUDIO.supports_webhooks) == (
        False,
        True,
    )
    assert (
        catalogue.takes_dialog_order("joypix"),
        catalogue.takes_dialog_order("lipsync_studio"),
    ) == (
        False,
        True,
    )


def test_each_mode_offers_its_providers_with_todays_default_first():
    # Dialogs open on JoyPix, talking photos stayed on lipsync.studio when
    # JoyPix's motion-2 came; only lipsync.studio dubs.
    assert catalogue.provider_choices_for("dialog") == [
        ("joypix", "JoyPix"),
        ("lipsync_studio", "lipsync.studio"),
    ]
    assert catalogue.provider_choices_for("talking_photo") == [
        ("lipsync_studio", "lipsync.studio"),
        ("joypix", "JoyPix"),
    ]
    assert catalogue.provider_choices_for("video_dub") == [("lipsync_studio", "lipsync.studio")]


def test_every_provider_in_the_catalogue_has_its_adapter():
    assert adapters.ADAPTERS == (JoyPixAdapter, LipsyncStudioAdapter)
    assert [cls.facts for cls in adapters.ADAPTERS] == list(catalogue.PROVIDERS)
    for facts in catalogue.PROVIDERS:
        assert adapters.adapter_class(facts.slug).facts is facts


def test_get_adapter_builds_one_for_a_slug(server):
    a = adapters.get_adapter("lipsync_studio", base_url=server.url, api_key=KEY)
    assert isinstance(a, LipsyncStudioAdapter)
    assert KEY not in repr(a)
    a.close()
    with pytest.raises(KeyError):
        adapters.adapter_class("nope")


def test_a_mode_the_provider_lacks_is_refused_before_sending(server):
    with pytest.raises(UnsupportedRequest, match="does not make video_dub"):
        adapter(JoyPixAdapter, server).submit(
            SubmitRequest(mode="video_dub", resolution="480p", video_url=VIDEO, audio_url=AUDIO)
        )
    with pytest.raises(UnsupportedRequest, match="no right audio"):
        adapter(JoyPixAdapter, server).submit(dialog(right_audio_url=None))
    with pytest.raises(UnsupportedRequest, match="no audio"):
        adapter(JoyPixAdapter, server).submit(talking_photo(audio_url=None))
    assert server.seen == []


# --- JoyPix: submit -------------------------------------------------------------------------


def test_joypix_submit_sends_the_pages_request(server):
    server.push(joypix_ok())
    prompt = "the left man speak happily, the right woman has cheerful expressions."
    task_id = adapter(JoyPixAdapter, server).submit(dialog(prompt=prompt))
    assert task_id == "task_123456789"
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/lip-sync/motion-2-dialog")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.json() == {
        "left_audio_url": LEFT,
        "right_audio_url": RIGHT,
        "image_url": IMG,
        "resolution": "480p",
        "prompt": prompt,
        "seed": -1,
    }


def test_joypix_submit_leaves_out_an_empty_prompt_and_sends_a_chosen_seed(server):
    server.push(joypix_ok())
    adapter(JoyPixAdapter, server).submit(dialog(resolution="720p", prompt="  ", seed=42))
    assert server.seen[0].json() == {
        "left_audio_url": LEFT,
        "right_audio_url": RIGHT,
        "image_url": IMG,
        "resolution": "720p",
        "seed": 42,
    }


@pytest.mark.parametrize("code", [0, 200, "0"])
def test_joypix_code_0_and_200_are_both_success(server, code):
    server.push(joypix_ok(code=code))
    assert adapter(JoyPixAdapter, server).submit(dialog()) == "task_123456789"


@pytest.mark.parametrize(
    ("envelope", "error", "text"),
    [
        (
            {"code": 400, "message": "left_audio_url is required"},
            ProviderRejected,
            "left_audio_url is required",
        ),
        (
            {"code": 1001, "message": "insufficient credits"},
            ProviderRejected,
            "insufficient credits",
        ),
        ({"code": 403, "message": ""}, ProviderRejected, "JoyPix error code 403"),
        ({"code": 429, "message": "rate limited"}, ProviderRefused, "HTTP 429"),
        ({"code": 503, "message": "maintenance"}, ProviderRefused, "HTTP 503"),
        ({"code": 500, "message": "internal"}, ProviderOutcomeUnknown, "HTTP 500"),
        (
            {"message": "success", "data": {"task_id": "t"}},
            ProviderOutcomeUnknown,
            "no status code",
        ),
        ({"code": 0, "message": "success", "data": {}}, ProviderOutcomeUnknown, "no task id"),
        (
            {"code": 0, "message": "success", "data": {"task_id": ""}},
            ProviderOutcomeUnknown,
            "no task id",
        ),
        ({"code": 0, "message": "success"}, ProviderOutcomeUnknown, "no task id"),
    ],
)
def test_joypix_submit_envelopes(server, envelope, error, text):
    server.push(Reply(200, envelope), joypix_ok())
    with pytest.raises(error) as caught:
        adapter(JoyPixAdapter, server).submit(dialog())
    assert type(caught.value) is error
    assert text in str(caught.value)
    assert len(server.seen) == 1


def test_joypix_http_400_envelope_is_rejected_with_its_message(server):
    server.push(Reply(400, {"code": 400, "message": "image_url is not an image"}))
    with pytest.raises(ProviderRejected, match="image_url is not an image"):
        adapter(JoyPixAdapter, server).submit(dialog())
    assert len(server.seen) == 1


def test_joypix_talking_photo_sends_motion_2s_request(server):
    # Its answer may carry data.status "submitted" beside the task id.
    server.push(
        Reply(
            200,
            {"code": 0, "msg": "success", "data": {"task_id": "task_42", "status": "submitted"}},
        )
    )
    task_id = adapter(JoyPixAdapter, server).submit(
        talking_photo(resolution="720p", prompt="smiles while speaking", seed=7)
    )
    assert task_id == "task_42"
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/lip-sync/motion-2")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.json() == {
        "audio_url": AUDIO,
        "image_url": IMG,
        "resolution": "720p",
        "prompt": "smiles while speaking",
        "seed": 7,
    }


def test_joypix_talking_photo_sends_no_dialog_fields_and_a_random_seed(server):
    server.push(joypix_ok())
    adapter(JoyPixAdapter, server).submit(
        talking_photo(left_audio_url=LEFT, right_audio_url=RIGHT, dialog_order="meanwhile")
    )
    assert server.seen[0].json() == {
        "audio_url": AUDIO,
        "image_url": IMG,
        "resolution": "480p",
        "seed": -1,
    }


@pytest.mark.parametrize("name", ["message", "msg"])
@pytest.mark.parametrize("request_for", [dialog, talking_photo])
def test_joypix_refusals_read_the_message_under_either_name(server, name, request_for):
    server.push(Reply(200, {"code": 1001, name: "insufficient credits"}))
    with pytest.raises(ProviderRejected, match="insufficient credits"):
        adapter(JoyPixAdapter, server).submit(request_for())
    server.push(Reply(200, {"code": 404, name: "task not found"}))
    with pytest.raises(ProviderRejected, match="task not found"):
        adapter(JoyPixAdapter, server).status("task_123456789")


def test_joypix_an_empty_message_falls_back_to_msg(server):
    server.push(Reply(200, {"code": 1002, "message": "", "msg": "image_url is not an image"}))
    with pytest.raises(ProviderRejected, match="image_url is not an image"):
        adapter(JoyPixAdapter, server).submit(talking_photo())


# --- JoyPix: status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"status": "submitted"}, TaskStatus(state="pending")),
        ({"status": "processing"}, TaskStatus(state="processing")),
        (
            {"status": "completed", "error": "", "video_url": OUT},
            TaskStatus(state="completed", video_url=OUT),
        ),
        (
            {"status": "failed", "error": "no face found", "video_url": ""},
            TaskStatus(state="failed", error="no face found"),
        ),
    ],
)
def test_joypix_status_mapping(server, data, expected):
    server.push(joypix_task(**data))
    status = adapter(JoyPixAdapter, server).status("task_123456789")
    assert status == expected  # raw is left out of the comparison
    assert status.raw["data"]["status"] == data["status"]
    [seen] = server.seen
    assert (seen.method, seen.path) == ("GET", "/v1/tasks/task_123456789")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("inputs", "seed"),
    [
        ('{"image_url": "https://x/p.png", "seed": 4242}', 4242),  # the page's string
        ({"seed": 7}, 7),  # an object, should it come as one
        ('{"seed": -1}', None),  # random, without saying which
        ('{"seed": "42"}', None),
        ("...", None),  # the page's example: not JSON
        ("[1, 2]", None),
    ],
)
def test_joypix_status_reports_the_seed_its_inputs_name(server, inputs, seed):
    server.push(joypix_task(status="processing", inputs=inputs))
    assert adapter(JoyPixAdapter, server).status("task_123456789").seed == seed


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (joypix_task(status="completed", video_url=""), ProviderMalformed),
        (joypix_task(status="completed"), ProviderMalformed),
        (joypix_task(status="queued"), ProviderMalformed),
        (joypix_task(status="processing", task_id="task_other"), ProviderMalformed),
        (Reply(200, {"code": 0, "message": "success"}), ProviderMalformed),
        (Reply(200, {"code": 404, "message": "task not found"}), ProviderRejected),
    ],
)
def test_joypix_status_answers_outside_the_contract(server, reply, error):
    server.push(reply)
    with pytest.raises(error):
        adapter(JoyPixAdapter, server).status("task_123456789")


def test_joypix_a_motion_2_task_is_polled_at_the_same_path(server):
    server.push(
        Reply(
            200,
            {
                "code": 0,
                "msg": "success",
                "data": {
                    "task_id": "task_42",
                    "model": "motion-2",
                    "status": "completed",
                    "video_url": OUT,
                },
            },
        )
    )
    status = adapter(JoyPixAdapter, server).status("task_42")
    assert status == TaskStatus(state="completed", video_url=OUT)
    assert server.seen[0].path == "/v1/tasks/task_42"


def test_a_task_id_cannot_change_the_path(server):
    server.push(joypix_task(status="processing", task_id="../../admin?x=1"))
    adapter(JoyPixAdapter, server).status("../../admin?x=1")
    assert server.seen[0].path == "/v1/tasks/..%2F..%2Fadmin%3Fx%3D1"


# --- lipsync.studio: submit ------------------------------------------------------------------


def test_lipsync_image_sends_the_pages_example(server):
    server.push(Reply(200, {"id": "550e8400-e29b-41d4-a716-446655440000", "status": "processing"}))
    task_id = adapter(LipsyncStudioAdapter, server).submit(
        SubmitRequest(
            mode="talking_photo",
            resolution="720p",
            image_url=IMG,
            audio_url=AUDIO,
            seed=42,
            webhook_url="https://your-app.example.com/webhooks/lipsync",
        )
    )
    assert task_id == "550e8400-e29b-41d4-a716-446655440000"
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/api/v1/lipsync-image")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.json() == {
        "webhook": "https://your-app.example.com/webhooks/lipsync",
        "formState": {"image": IMG, "audio": AUDIO, "resolution": "720p", "seed": 42},
    }


def test_lipsync_video_with_every_option(server):
    server.push(Reply(200, {"id": "v1", "status": "processing"}))
    adapter(LipsyncStudioAdapter, server).submit(
        SubmitRequest(
            mode="video_dub",
            resolution="480p",
            video_url=VIDEO,
            audio_url=AUDIO,
            mask_url=MASK,
            prompt="calm",
            seed=7,
        )
    )
    [seen] = server.seen
    assert seen.path == "/api/v1/lipsync-video"
    assert seen.json() == {
        "formState": {
            "video": VIDEO,
            "audio": AUDIO,
            "resolution": "480p",
            "mask_image": MASK,
            "prompt": "calm",
            "seed": 7,
        }
    }


def test_lipsync_video_without_mask_prompt_seed_or_webhook(server):
    server.push(Reply(200, {"id": "v1", "status": "processing"}))
    adapter(LipsyncStudioAdapter, server).submit(
        SubmitRequest(mode="video_dub", resolution="720p", video_url=VIDEO, audio_url=AUDIO)
    )
    assert server.seen[0].json() == {
        "formState": {"video": VIDEO, "audio": AUDIO, "resolution": "720p"}
    }


@pytest.mark.parametrize("order", ["sequential", "meanwhile"])
def test_lipsync_image_multi_sends_both_audios_and_the_order(server, order):
    server.push(Reply(200, {"id": "m1", "status": "processing"}))
    adapter(LipsyncStudioAdapter, server).submit(dialog(dialog_order=order))
    [seen] = server.seen
    assert seen.path == "/api/v1/lipsync-image-multi"
    assert seen.json() == {
        "formState": {
            "image": IMG,
            "left_audio": LEFT,
            "right_audio": RIGHT,
            "order": order,
            "resolution": "480p",
        }
    }


def test_lipsync_image_multi_without_an_order_is_not_sent(server):
    """The provider would bill the sum of the clips for a missing order: a
    dialog the studio quoted without one is its bug, caught before sending."""
    with pytest.raises(UnsupportedRequest, match="no speaking order"):
        adapter(LipsyncStudioAdapter, server).submit(dialog(dialog_order=None))
    assert server.seen == []


@pytest.mark.parametrize("answer", [{"status": "processing"}, {"id": ""}, {"id": None}])
def test_lipsync_submit_without_an_id_is_unknown(server, answer):
    server.push(Reply(200, answer), Reply(200, {"id": "again"}))
    with pytest.raises(ProviderOutcomeUnknown, match="no job id"):
        adapter(LipsyncStudioAdapter, server).submit(dialog())
    assert len(server.seen) == 1


# --- lipsync.studio: status and webhook -------------------------------------------------------

JOB = "550e8400-e29b-41d4-a716-446655440000"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # The page's three example answers, verbatim.
        (
            {
                "id": JOB,
                "model": "lipsync",
                "status": "processing",
                "output": None,
                "error": "",
                "executionTime": None,
                "timings": None,
            },
            TaskStatus(state="processing"),
        ),
        (
            {
                "id": JOB,
                "model": "lipsync-image",
                "status": "completed",
                "output": OUT,
                "error": "",
                "executionTime": 12345,
                "timings": None,
            },
            TaskStatus(state="completed", video_url=OUT),
        ),
        (
            {
                "id": JOB,
                "model": "lipsync-image",
                "status": "failed",
                "output": None,
                "error": "Invalid audio format",
                "executionTime": None,
                "timings": None,
            },
            TaskStatus(state="failed", error="Invalid audio format"),
        ),
    ],
)
def test_lipsync_status_mapping(server, answer, expected):
    server.push(Reply(200, answer))
    assert adapter(LipsyncStudioAdapter, server).status(JOB) == expected
    [seen] = server.seen
    assert (seen.method, seen.path) == ("GET", f"/api/v1/jobs/{JOB}")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "answer",
    [
        {"id": JOB, "status": "completed", "output": None},
        {"id": JOB, "status": "completed", "output": "file:///etc/passwd"},
        {"id": JOB, "status": "queued"},
        {"id": JOB},
        {"id": "someone-else", "status": "processing"},
    ],
)
def test_lipsync_status_answers_outside_the_contract(server, answer):
    server.push(Reply(200, answer))
    with pytest.raises(ProviderMalformed):
        adapter(LipsyncStudioAdapter, server).status(JOB)


@pytest.mark.parametrize(
    ("body", "job_id"),
    [
        (
            b'{"id": "550e8400-e29b-41d4-a716-446655440000", "model": "lipsync-image", '
            b'"status": "completed", "output": "https://x/r.mp4", "error": "", '
            b'"executionTime": 12345, "timings": null}',
            JOB,
        ),
        (b'{"status": "completed"}', None),
        (b'["550e8400"]', None),
        (b"not json", None),
        (b'{"id": ""}', None),
        (b'{"id": "' + b"x" * 70_000 + b'"}', None),
        (b"[" * 100_000, None),
    ],
)
def test_parse_webhook_takes_only_the_job_id(body, job_id):
    assert parse_webhook(body) == job_id
    assert LipsyncStudioAdapter.parse_webhook(body) == job_id


# --- The key stays secret through the adapters -----------------------------------------------


def test_the_key_stays_out_of_adapter_errors_statuses_and_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.push(
        Reply(200, {"code": 401, "message": f"bad token Bearer {KEY}"}),
        joypix_task(status="failed", error=f"key {KEY} has no credits"),
        Reply(401, {"error": f"Unknown key {KEY}"}),
    )
    texts = []
    with pytest.raises(ProviderError) as caught:
        adapter(JoyPixAdapter, server).submit(dialog())
    texts += [str(caught.value), "".join(traceback.format_exception(caught.value))]
    status = adapter(JoyPixAdapter, server).status("task_123456789")
    texts += [status.error]
    with pytest.raises(ProviderError) as caught:
        adapter(LipsyncStudioAdapter, server).submit(dialog())
    texts += [str(caught.value), repr(caught.value), caplog.text]
    assert all(KEY not in t for t in texts)
    assert texts[0] == "bad token Bearer [redacted]"
    assert status.error == "key [redacted] has no credits"
