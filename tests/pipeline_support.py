"""Shared set-up for the pipeline tests: the studio on a live server, the
sandbox provider on a real port, real media staged as the Studio form stages
it, and helpers that drive the cluster's periodic work by hand.

tests/conftest.py registers this module as a plugin, so every test can ask
for the `pipeline` fixture by name.

Tasks run inline (Q_CLUSTER["sync"]): job_create's on-commit submit happens in
the test's own thread, and kick_poller() does nothing, so the tests call
poller.poll_due() and lifecycle.reconcile() as the cluster's schedules would.
"""

from __future__ import annotations

import importlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from jobs import lifecycle, poller
from jobs.ledger import Balance, credits_balances, credits_grant
from jobs.models import EntryKind, Job, LedgerEntry, Pool, Upload
from jobs.sandbox import SandboxConfig, SandboxServer
from jobs.uploads import upload_stage
from tests.media_factory import make_audio, make_image

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
        resolution: str = "480p",
        prompt: str = "",
        seed: int = -1,
        owner=None,
    ) -> Job:
        """A dialog job made through job_create; its submit runs inline on commit."""
        return lifecycle.job_create(
            owner=owner or self.owner,
            mode="dialog",
            provider="joypix",
            resolution=resolution,
            files=self.dialog_files(left, right, owner),
            prompt=prompt,
            seed=seed,
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


def state_of(job: Job) -> str:
    return Job.objects.values_list("state", flat=True).get(pk=job.pk)


def run_until_terminal(job: Job, *, timeout: float = 15.0, reconcile: bool = False) -> Job:
    """Drive the poll loop (and the reconciler, if asked) until `job` has ended."""

    def step():
        poller.poll_due(max_seconds=1.0)
        if reconcile:
            lifecycle.reconcile()

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


# --- fixtures ---------------------------------------------------------------------------


def _seed_rates() -> None:
    """The seeded prices. Transactional tests (live_server) flush the database
    after each test, data migrations' rows included, so put them back."""
    for name in ("0002_seed_rates", "0005_seed_lipsync_studio_rates"):
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
