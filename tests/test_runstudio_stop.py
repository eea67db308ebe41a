"""The run command in the foreground, as a terminal runs it: web server,
cluster and sandbox start together, and Ctrl-C stops them all cleanly."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Output:
    """A child's output, read as it comes, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._reader.start()

    def _read(self, process):
        for line in process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        with self._changed:
            found = self._changed.wait_for(lambda: any(text in x for x in self.lines), timeout)
        assert found, f"no {text!r} within {timeout} s in:\n{self.text}"

    def close(self) -> None:
        self._reader.join(10)

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)


def ctrl_c(process: subprocess.Popen) -> None:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process
    group. Pressed twice, close together (an impatient second press, or the
    run command's own stop arriving just after the terminal's)."""
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.03)  # two signals, not one: the kernel merges signals sent at once
    os.killpg(process.pid, signal.SIGINT)


@pytest.fixture
def studio_env(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        # The embedded default (SQLite, the sandbox for both providers), whatever is set here.
        if k not in {"DATABASE_URL", "REDIS_URL", "SANDBOX_URL", "PUBLIC_BASE_URL", "DEBUG"}
        and not k.startswith(("JOYPIX_", "LIPSYNC_STUDIO_"))
    }
    env |= {
        "DATA_DIR": str(tmp_path),
        "PORT": str(free_port()),
        "SANDBOX_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        # The production settings, not the suite's (pytest-django exports those).
        "DJANGO_SETTINGS_MODULE": "lipsync_site.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return env


def test_ctrl_c_stops_the_web_server_cluster_and_sandbox_without_a_traceback(studio_env):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runstudio"],
        cwd=ROOT,
        env=studio_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    output = Output(process)
    try:
        output.wait_for("Lipsync Studio is running")
        output.wait_for("listening on")  # the sandbox
        output.wait_for("Booting worker")  # gunicorn
        web = f"http://127.0.0.1:{studio_env['PORT']}/favicon.ico"  # no static manifest needed
        deadline = time.monotonic() + 30
        while True:
            try:
                assert requests.get(web, timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, output.text
                time.sleep(0.2)

        ctrl_c(process)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()

    assert process.returncode == 0, output.text
    # Every child stopped with it: nothing answers on the web or sandbox port.
    for port in (studio_env["PORT"], studio_env["SANDBOX_PORT"]):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert "Traceback" not in output.text, output.text
    assert "KeyboardInterrupt" not in output.text, output.text
