"""The run command: loopback fetches (FETCH_ALLOW_LOOPBACK) are allowed in the
processes it starts only when it starts the sandbox, whose links are on
127.0.0.1. The processes are stand-ins that stop at once."""

import os
import signal

import pytest
from django.core.management import call_command

from jobs.management.commands import runstudio

pytestmark = pytest.mark.django_db


class _Stopped:
    """A started process that has already exited."""

    returncode = 0

    def __init__(self, cmd, env):
        self.cmd, self.env = cmd, env

    def poll(self):
        return 0

    def send_signal(self, signum):
        pass

    def wait(self, timeout=None):
        return 0

    def kill(self):
        pass


@pytest.fixture
def started(monkeypatch, settings):
    """{name of the process: its environment} for what the command starts."""
    settings.JOYPIX_BASE_URL = settings.JOYPIX_API_KEY = ""
    settings.LIPSYNC_STUDIO_BASE_URL = settings.LIPSYNC_STUDIO_API_KEY = ""
    monkeypatch.delenv("FETCH_ALLOW_LOOPBACK", raising=False)
    processes: list[_Stopped] = []

    def popen(cmd, env):
        processes.append(_Stopped(cmd, env))
        return processes[-1]

    monkeypatch.setattr(runstudio.subprocess, "Popen", popen)
    monkeypatch.setattr(runstudio.signal, "signal", lambda *args: signal.SIG_DFL)

    def run(*args) -> dict[str, dict]:
        processes.clear()
        with pytest.raises(SystemExit):
            call_command("runstudio", *args)
        names = {"gunicorn": "web", "qcluster": "cluster", "sandbox": "sandbox"}
        return {next(n for word, n in names.items() if word in p.cmd): p.env for p in processes}

    return run


def test_loopback_fetches_are_allowed_when_the_sandbox_is_started(started):
    envs = started()

    assert set(envs) == {"web", "cluster", "sandbox"}
    assert all(env.get("FETCH_ALLOW_LOOPBACK") == "1" for env in envs.values())
    assert "FETCH_ALLOW_LOOPBACK" not in os.environ


def test_without_the_sandbox_loopback_fetches_stay_refused(started, settings):
    envs = started("--no-sandbox")
    assert set(envs) == {"web", "cluster"}
    assert not any("FETCH_ALLOW_LOOPBACK" in env for env in envs.values())

    settings.JOYPIX_BASE_URL = "https://openapi.joypix.example"
    settings.JOYPIX_API_KEY = "jp-key"
    settings.LIPSYNC_STUDIO_BASE_URL = "https://api.lipsync.example"
    settings.LIPSYNC_STUDIO_API_KEY = "ls-key"
    envs = started()
    assert set(envs) == {"web", "cluster"}
    assert not any("FETCH_ALLOW_LOOPBACK" in env for env in envs.values())
