"""Shared set-up for the pipeline tests: the studio on a live server, the
sandbox provider on a real port, real media staged as the Studio form stages
it, and helpers that drive the cluster's periodic work by hand.

tests/conftest.py registers this module as a plugin, so every test can ask
for the `pipeline` fixture by name.

Tasks run inline (Q_CLUSTER["sync"]): job_create's on-commit submit happens in
the test's own thread, and kick_poller() does nothing, so the tests call
poller.poll_due() and lifecycle.jobs_reconcile() as the cluster's schedules would.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
import requests
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import close_old_connections
from django.test import Client

from jobs.credits.ledger import Balance, credits_balances, credits_grant
from jobs.files import media
from jobs.files.storage import local_copy
from jobs.models import EntryKind, Job, LedgerEntry, Pool, Rate, Upload
from jobs.pipeline import lifecycle, poller
from jobs.providers.sandbox import RESOLUTIONS, SandboxConfig, SandboxServer
from jobs.studio.uploads import upload_stage
from tests.media_factory import make_audio, make_image, make_video

SANDBOX_KEY = "sk_sandbox_pipeline_0123456789"
SANDBOX_RTF = 0.05  # the studio's idea of the sandbox's speed: first poll after ~1 s
GRANT = 300
JOYPIX_SUBMIT = "/v1/lip-sync/motion-2-dialog"
JOYPIX_TASKS = "/v1/tasks/"


@dataclass
class Pipeline:
    """Everything a pipeline test touches."""

    sandbox: SandboxServer
    studio_url: str
    media_dir: Path
    owner: object

    # --- making jobs, as the Studio form does -------------------------------------

    def stage(self, kind: str, path: Path, content_type: str, owner=None) -> Upload:
        uploaded = SimpleUploadedFile(path.name, path.read_bytes(), content_type=content_type)
        return upload_stage(owner=owner or self.owner, kind=kind, uploaded=uploaded)

    def audio(self, seconds: float, *, fmt: str = "mp3", tone_hz: int = 220) -> Path:
        path = self.media_dir / f"voice-{seconds:g}s-{tone_hz}.{fmt}"
        if not path.exists():
            make_audio(path, seconds, fmt=fmt, tone_hz=tone_hz)
        return path

    def photo(self) -> Path:
        path = self.media_dir / "two-people.jpg"
        if not path.exists():
            make_image(path, 960, 640, fmt="jpeg")
        return path

    def dialog_files(self, left: float, right: float, owner=None) -> dict[str, Upload]:
        return {
            "image": self.stage("image", self.photo(), "image/jpeg", owner),
            "left_audio": self.stage("audio", self.audio(left, tone_hz=220), "audio/mpeg", owner),
            "right_audio": self.stage(
                "audio", self.audio(right, fmt="wav", tone_hz=330), "audio/wav", owner
            ),
        }

    def create_dialog(
        self,
        *,
        left: float = 1.5,
        right: float = 2.0,
        provider: str = "joypix",
        resolution: str = "480p",
        prompt: str = "",
        seed: int = -1,
        owner=None,
        dialog_order: str = "",
    ) -> Job:
        """A dialog job made through job_create; its submit runs inline on commit."""
        return self.create(
            mode="dialog",
            provider=provider,
            files=self.dialog_files(left, right, owner),
            resolution=resolution,
            prompt=prompt,
            seed=seed,
            owner=owner,
            dialog_order=dialog_order,
        )

    def create(
        self,
        *,
        mode: str,
        provider: str,
        files: dict[str, Upload],
        resolution: str = "480p",
        prompt: str = "",
        seed: int = -1,
        owner=None,
        dialog_order: str = "",
    ) -> Job:
        """Any job, as the Studio form makes it: job_create on staged uploads."""
        return lifecycle.job_create(
            owner=owner or self.owner,
            mode=mode,
            provider=provider,
            resolution=resolution,
            files=files,
            prompt=prompt,
            seed=seed,
            dialog_order=dialog_order,
        )

    # --- what the sandbox saw -----------------------------------------------------

    def submit_calls(self) -> list:
        return [c for c in self.sandbox.calls if c.method == "POST" and c.path == JOYPIX_SUBMIT]

    def poll_calls(self) -> list:
        return [c for c in self.sandbox.calls if c.path.startswith(JOYPIX_TASKS)]

    def submissions(self) -> int:
        return self.sandbox.submissions.get(JOYPIX_SUBMIT, 0)

    # --- credits --------------------------------------------------------------------

    def studio_balance(self, owner=None) -> Balance:
        return credits_balances(user=owner or self.owner)[Pool.STUDIO]

    def entries(self, job: Job) -> list[tuple[str, int]]:
        return list(
            LedgerEntry.objects.filter(job=job).order_by("pk").values_list("kind", "amount")
        )

    # --- the studio over HTTP ---------------------------------------------------------

    def browser(self, user) -> requests.Session:
        """A requests session signed in as `user` (session cookie from the test client)."""
        client = Client()
        client.force_login(user)
        session = requests.Session()
        session.trust_env = False
        for name, morsel in client.cookies.items():
            session.cookies.set(name, morsel.value)
        return session


# --- driving the cluster by hand ---------------------------------------------------------


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float = 15.0,
    step: Callable[[], object] | None = None,
    interval: float = 0.05,
    what: str = "the condition",
) -> None:
    """Run `step` (if any) and check `condition` until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            step()
        if condition():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


def wait_for_sandbox_task_thread(sandbox: SandboxServer, task_id: str, *, timeout=10.0) -> None:
    """Wait until the sandbox's thread for a task has ended. It sends the
    task's webhooks itself, each waiting for the studio's answer, so by then
    every webhook it would ever send has come and been answered: a check that
    none came is not a race against a fixed sleep."""
    name = f"sandbox-{task_id[:13]}"  # as SandboxServer names the thread
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(timeout)
            assert not thread.is_alive(), f"the sandbox still runs task {task_id}"


def state_of(job: Job) -> str:
    return Job.objects.values_list("state", flat=True).get(pk=job.pk)


def run_until_terminal(job: Job, *, timeout: float = 15.0, reconcile: bool = False) -> Job:
    """Drive the poll loop (and the reconciler, if asked) until `job` has ended."""

    def step():
        poller.poll_due(max_seconds=1.0)
        if reconcile:
            lifecycle.jobs_reconcile()

    wait_until(
        lambda: state_of(job) in ("completed", "failed"),
        step=step,
        timeout=timeout,
        what=f"job #{job.pk} finishing",
    )
    return Job.objects.get(pk=job.pk)


def ledger_check() -> str:
    """check_ledger's report; raises CommandError (non-zero exit) on any problem."""
    out = io.StringIO()
    call_command("check_ledger", stdout=out)
    return out.getvalue()


def assert_released(job: Job) -> None:
    """A failed job: its whole hold released, nothing charged."""
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.credits_charged is None
    entries = LedgerEntry.objects.filter(job=job).order_by("pk").values_list("kind", "amount")
    assert list(entries) == [
        (EntryKind.HOLD, job.credits_held),
        (EntryKind.RELEASE, job.credits_held),
    ]


def assert_playable(done: Job, resolution: str, seconds: float) -> media.VideoInfo:
    """The archived output: H.264 + AAC at the requested size, `seconds` long,
    and every frame and sample decodes."""
    with local_copy(done.output.name) as path:
        return _assert_playable(done, str(path), resolution, seconds)


def _assert_playable(done: Job, path: str, resolution: str, seconds: float) -> media.VideoInfo:
    info = media.probe_output_video(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == RESOLUTIONS[resolution]
    assert (done.output_width, done.output_height) == RESOLUTIONS[resolution]
    assert info.duration == pytest.approx(seconds, abs=0.25)
    assert done.output_seconds == pytest.approx(seconds, abs=0.25)
    with av.open(path) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(path) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].sample_rate
    assert frames == pytest.approx(seconds * info.fps, abs=3)
    assert samples / rate == pytest.approx(seconds, abs=0.25)
    return info


# --- fixtures ---------------------------------------------------------------------------


def _seed_rates() -> None:
    """The seeded prices. Transactional tests (live_server) flush the database
    after each test, data migrations' rows included, so put them back, in the
    migrations' order (0010's rows start after 0005's). Before the first such
    test they are all there still, as the migrations left them."""
    if Rate.objects.exists():
        return
    for name in (
        "0002_seed_rates",
        "0005_seed_lipsync_studio_rates",
        "0010_lipsync_studio_real_rates",
        "0015_joypix_motion_2_rates",
    ):
        importlib.import_module(f"jobs.migrations.{name}").seed(django_apps, None)


@pytest.fixture
def pipeline(settings, live_server, tmp_path, tmp_path_factory, alice):
    """The studio (live_server, so transactional) wired to a sandbox provider on
    a real port; alice holds GRANT studio credits."""
    sandbox = SandboxServer(
        SandboxConfig(
            api_key=SANDBOX_KEY, rtf=0.05, min_delay=0.3, storage_dir=tmp_path / "sandbox"
        )
    ).start()
    settings.PUBLIC_BASE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SANDBOX_URL = sandbox.url
    settings.SANDBOX_API_KEY = SANDBOX_KEY
    settings.SANDBOX_RTF = SANDBOX_RTF
    # Never a real provider, whatever the environment says.
    settings.JOYPIX_BASE_URL = ""
    settings.JOYPIX_API_KEY = ""
    settings.LIPSYNC_STUDIO_BASE_URL = ""
    settings.LIPSYNC_STUDIO_API_KEY = ""
    settings.PROVIDER_CONNECT_TIMEOUT = 2
    settings.PROVIDER_READ_TIMEOUT = 10
    # The sandbox's output links are on 127.0.0.1, as with `./studio run`.
    settings.FETCH_ALLOW_LOOPBACK = True
    assert settings.Q_CLUSTER["sync"], "the pipeline tests drive the cluster themselves"
    _seed_rates()
    credits_grant(user=alice, pool=Pool.STUDIO, amount=GRANT, key="grant:alice:pipeline")
    # Generated media is shared by every pipeline test of the session.
    media_dir = tmp_path_factory.getbasetemp() / "pipeline-media"
    media_dir.mkdir(exist_ok=True)
    try:
        yield Pipeline(
            sandbox=sandbox, studio_url=live_server.url, media_dir=media_dir, owner=alice
        )
    finally:
        sandbox.stop()


# --- lipsync.studio jobs, and what the sandbox saw of them --------------------------------
# (Module functions taking the `pipeline` fixture, used by test_pipeline_lipsync.py and
# test_webhooks_e2e.py.)

LIPSYNC_SUBMIT = "/api/v1/"  # + model
LIPSYNC_JOBS = "/api/v1/jobs/"


def video(pipeline: Pipeline, seconds: float, *, width: int = 640, height: int = 360) -> Path:
    """A 15 fps clip with a dot moving left to right along its top edge (and a tone)."""
    path = pipeline.media_dir / f"clip-{seconds:g}s-{width}x{height}.mp4"
    if not path.exists():
        make_video(path, seconds, width, height, 15)
    return path


def mask(pipeline: Pipeline) -> Path:
    path = pipeline.media_dir / "mask.png"
    if not path.exists():
        make_image(path, 640, 360, fmt="png", color=(255, 255, 255))
    return path


def create_talking_photo(
    pipeline: Pipeline,
    *,
    seconds: float = 1.5,
    resolution: str = "480p",
    prompt: str = "",
    seed: int = -1,
    owner=None,
    provider: str = "lipsync_studio",
) -> Job:
    """A talking photo (lipsync.studio's unless told) made through job_create;
    its submit runs on commit."""
    return pipeline.create(
        mode="talking_photo",
        provider=provider,
        files={
            "image": pipeline.stage("image", pipeline.photo(), "image/jpeg", owner),
            "audio": pipeline.stage("audio", pipeline.audio(seconds), "audio/mpeg", owner),
        },
        resolution=resolution,
        prompt=prompt,
        seed=seed,
        owner=owner,
    )


def create_dub(
    pipeline: Pipeline,
    *,
    video_seconds: float = 2.0,
    audio_seconds: float = 1.5,
    with_mask: bool = False,
    resolution: str = "480p",
    prompt: str = "",
    seed: int = -1,
    owner=None,
) -> Job:
    """A lipsync.studio video dub (video + audio, and a mask if asked)."""
    files = {
        "video": pipeline.stage("video", video(pipeline, video_seconds), "video/mp4", owner),
        "audio": pipeline.stage(
            "audio", pipeline.audio(audio_seconds, fmt="wav", tone_hz=440), "audio/wav", owner
        ),
    }
    if with_mask:
        files["mask"] = pipeline.stage("image", mask(pipeline), "image/png", owner)
    return pipeline.create(
        mode="video_dub",
        provider="lipsync_studio",
        files=files,
        resolution=resolution,
        prompt=prompt,
        seed=seed,
        owner=owner,
    )


def create_lipsync_dialog(pipeline: Pipeline, **options) -> Job:
    """A dialog sent to lipsync.studio's lipsync-image-multi."""
    return pipeline.create_dialog(provider="lipsync_studio", **options)


def lipsync_submit_calls(pipeline: Pipeline, model: str | None = None) -> list:
    """POSTs to lipsync.studio's submit endpoints (one model's, if given)."""
    return [
        c
        for c in pipeline.sandbox.calls
        if c.method == "POST"
        and c.path.startswith(LIPSYNC_SUBMIT)
        and not c.path.startswith(LIPSYNC_JOBS)
        and (model is None or c.path == LIPSYNC_SUBMIT + model)
    ]


def lipsync_poll_calls(pipeline: Pipeline) -> list:
    return [c for c in pipeline.sandbox.calls if c.path.startswith(LIPSYNC_JOBS)]


def lipsync_requests(pipeline: Pipeline) -> list[tuple[str, dict, bool | None]]:
    """(model, JSON body, whether the key was right) of every lipsync.studio
    submission the sandbox received, exactly as it arrived over HTTP."""
    import json

    return [
        (c.path.removeprefix(LIPSYNC_SUBMIT), json.loads(c.body), c.key_ok)
        for c in lipsync_submit_calls(pipeline)
    ]


@contextlib.contextmanager
def every_log_record_into(handler: logging.Handler):
    """Every logger at DEBUG and every record into `handler` (pytest's
    caplog.handler), including the loggers settings.LOGGING keeps from
    propagating ("jobs", "django_q"), from every thread."""
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = [(logger, logger.level) for logger in loggers]
    attached = [
        logger
        for logger in loggers
        if (logger is root or not logger.propagate) and handler not in logger.handlers
    ]
    handler_level = handler.level
    handler.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in attached:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in attached:
            logger.removeHandler(handler)
        for logger, level in levels:
            logger.setLevel(level)
        handler.setLevel(handler_level)


@pytest.fixture
def cluster():
    """The cluster's poll loop in a thread until the test ends, as the django-q2
    schedule would run it (the browser tests watch cards move on their own)."""
    stop = threading.Event()

    def run():
        try:
            while not stop.is_set():
                poller.poll_due(max_seconds=0.5)
                stop.wait(0.1)
        finally:
            close_old_connections()

    thread = threading.Thread(target=run, name="cluster", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
