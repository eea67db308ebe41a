"""The run command: loopback fetches (FETCH_ALLOW_LOOPBACK) are allowed in the
processes it starts only when it starts the sandbox, whose links are on
127.0.0.1; one process ending stops the others and fails the command with its
code; Ctrl-C or a plain kill stops them all. The processes are stand-ins
(tests/test_runstudio_stop.py runs the real ones)."""

import os
import signal
import subprocess
from io import StringIO

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

    def popen(cmd, env, start_new_session=False):
        # Its own session: only runstudio hears a terminal's Ctrl-C, and stops it once.
        assert start_new_session, cmd
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


# --- One process ending, or a stop asked for, stops them all ------------------------------


class _Child:
    """A started process that runs until told otherwise: it may have exited
    already (`exited`), ignore SIGTERM, or call `on_poll` when checked."""

    def __init__(self, cmd, *, exited=None, ignores_term=False, on_poll=None):
        self.cmd, self.returncode = cmd, exited
        self.ignores_term, self.on_poll = ignores_term, on_poll
        self.signals: list[int] = []
        self.killed = False

    def poll(self):
        if self.on_poll:
            self.on_poll()
        return self.returncode

    def send_signal(self, signum):
        self.signals.append(signum)
        if not self.ignores_term:
            self.returncode = -signum

    def wait(self, timeout=None):
        if self.returncode is None:  # instead of waiting out the command's 10 s
            raise subprocess.TimeoutExpired(self.cmd, timeout)
        return self.returncode

    def kill(self):
        self.killed, self.returncode = True, -signal.SIGKILL


@pytest.fixture
def children(monkeypatch, settings):
    """Runs the command over stand-in processes made by `make(name, cmd)`;
    returns (exit code, {name: child}, stderr) and the signal handlers it set."""
    settings.JOYPIX_BASE_URL = settings.JOYPIX_API_KEY = ""
    settings.LIPSYNC_STUDIO_BASE_URL = settings.LIPSYNC_STUDIO_API_KEY = ""
    handlers: dict[int, object] = {}
    monkeypatch.setattr(runstudio.signal, "signal", lambda sig, h: handlers.__setitem__(sig, h))
    names = {"gunicorn": "web", "qcluster": "cluster", "sandbox": "sandbox"}

    def run(make) -> tuple[int, dict[str, _Child], str]:
        made: dict[str, _Child] = {}

        def popen(cmd, env, start_new_session=False):
            name = next(n for word, n in names.items() if word in cmd)
            made[name] = make(name, cmd)
            return made[name]

        monkeypatch.setattr(runstudio.subprocess, "Popen", popen)
        err = StringIO()
        with pytest.raises(SystemExit) as stopped:
            call_command("runstudio", stdout=StringIO(), stderr=err)
        return stopped.value.code, made, err.getvalue()

    return run, handlers


def test_a_process_that_ends_stops_the_others_and_the_command_fails_with_its_code(children):
    run, _ = children

    def make(name, cmd):
        if name == "cluster":
            return _Child(cmd, exited=3)
        return _Child(cmd, ignores_term=name == "sandbox")

    code, made, err = run(make)

    assert code == 3
    assert "cluster stopped (exit 3); stopping." in err
    assert made["web"].signals == [signal.SIGTERM] and not made["web"].killed
    # One that does not stop when asked is killed, not left running.
    assert made["sandbox"].signals == [signal.SIGTERM] and made["sandbox"].killed
    assert made["cluster"].signals == []  # it had already ended


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_a_plain_kill_stops_every_process_and_exits_cleanly(children, signum):
    run, handlers = children
    asked = []

    def stop_once():  # the signal arrives while the command watches its processes
        if not asked:
            asked.append(signum)
            handlers[signum](signum, None)

    def make(name, cmd):
        return _Child(cmd, on_poll=stop_once if name == "web" else None)

    code, made, err = run(make)

    assert asked == [signum]
    assert code == 0 and err == ""
    assert set(made) == {"web", "cluster", "sandbox"}
    for child in made.values():
        assert child.signals == [signal.SIGTERM] and not child.killed
