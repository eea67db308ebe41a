"""The studio's real processes, started as `manage.py runstudio` starts them:
the sandbox provider (`manage.py sandbox`), the web server (gunicorn, gthread)
and any number of cluster nodes (`manage.py qcluster`), each in its own
session with its output in a log file. For the integration tests
(tests/integration/) and bench/chaos.py.

    env = studio_env(data_dir=..., sqlite_path=...)      # or database_url=, redis_url=
    manage(env, "migrate"); manage(env, "collectstatic", "--no-input")
    with Studio(env, log_dir=tmp) as studio:
        studio.start_sandbox()
        studio.start_web()
        studio.start_node("node1")
        studio.kill("node1")                            # SIGKILL: sentinel and workers
        studio.restart("node1")
        studio.wait_until(lambda: ..., timeout=30, what="every job completed")
    # every process stopped (SIGTERM, then SIGKILL of its whole group)

Only the standard library: the children read their settings from the
environment (lipsync_site.settings with Q_SYNC off, as in production).
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")
PYTHON = sys.executable
SANDBOX_API_KEY = "sandbox-key-processes"

# Set in a developer's shell (or by pytest-django), these would point a child
# at other data or settings.
CLEARED = (
    "DATABASE_URL",
    "REDIS_URL",
    "SQLITE_PATH",
    "MEDIA_ROOT",
    "DJANGO_SETTINGS_MODULE",
    "SANDBOX_FAULTS",
    "DEBUG",
)


def free_port() -> int:
    """A port the OS says is free now (bound to port 0, then closed), so that
    a process restarted later can listen on the same one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def studio_env(
    *,
    data_dir: Path,
    secret_key: str,
    sqlite_path: Path | None = None,
    database_url: str | None = None,
    redis_url: str | None = None,
    media_root: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment every child shares: the studio's own settings, one
    database (PostgreSQL at `database_url`, else the SQLite file
    `sqlite_path`), Redis as broker and cache when `redis_url`, the sandbox
    for both providers and loopback fetches allowed (as runstudio does when
    it starts the sandbox). `extra` goes on top (e.g. POLL_LOOP_SECONDS)."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "lipsync_site.settings",
            "PYTHONUNBUFFERED": "1",
            "Q_SYNC": "0",
            "DATA_DIR": str(data_dir),
            "MEDIA_ROOT": str(media_root or Path(data_dir) / "media"),
            "SECRET_KEY": secret_key,
            "LOG_LEVEL": "INFO",
            "FETCH_ALLOW_LOOPBACK": "1",
            "SANDBOX_API_KEY": SANDBOX_API_KEY,
            "JOYPIX_BASE_URL": "",
            "JOYPIX_API_KEY": "",
            "LIPSYNC_STUDIO_BASE_URL": "",
            "LIPSYNC_STUDIO_API_KEY": "",
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    elif sqlite_path:
        env["SQLITE_PATH"] = str(sqlite_path)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run one manage.py command to its end in `env` (e.g. "migrate",
    "collectstatic": the web server needs the collected files); its output,
    or RuntimeError with the output when it fails."""
    done = subprocess.run(
        [PYTHON, MANAGE, *args],
        env=env,
        cwd=BASE_DIR,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


class Process:
    """One child: started in its own session (its own process group), output
    appended to `log_path`; restart runs the same command with the same env."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path):
        self.name, self.cmd, self.env, self.log_path = name, cmd, env, log_path
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> Process:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        # The first start begins a fresh log; restarts append to it.
        with open(self.log_path, "ab" if self.starts > 1 else "wb") as log:
            log.write(f"\n--- start #{self.starts}: {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=BASE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def children(self) -> list[int]:
        """Pids of its descendants (a node's sentinel, pusher, monitor, workers)."""
        return descendants(self.pid) if self.alive else []

    def kill(self) -> None:
        """SIGKILL the whole group at once: nothing gets to clean up, as when
        a machine dies."""
        if self.popen is None:
            return
        _killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._note("SIGKILL")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful stop, as runstudio's), then SIGKILL of the
        group for whatever is left."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.popen.pid, signal.SIGKILL)  # a child the stop left behind
        self.popen.wait()

    def restart(self) -> Process:
        self.stop()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def _note(self, what: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- {what} by the harness\n".encode())


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _gunicorn_major() -> int:
    try:
        return int(importlib.metadata.version("gunicorn").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return 0


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Studio:
    """The processes of one studio, sharing one environment. Ports are chosen
    by the OS once, so restarted processes come back at the same address."""

    def __init__(self, env: dict[str, str], *, log_dir: Path):
        self.env = dict(env)
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, Process] = {}
        self.sandbox_port = free_port()
        self.web_port = free_port()
        self.env.update(
            {
                "SANDBOX_PORT": str(self.sandbox_port),
                "SANDBOX_URL": self.sandbox_url,
                "PORT": str(self.web_port),
                "PUBLIC_BASE_URL": self.web_url,
            }
        )

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- starting ------------------------------------------------------------------

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, cmd, {**self.env, **(env or {})}, self.log_dir / f"{name}.log")
        self.processes[name] = process
        return process.start()

    def start_sandbox(self, *, rtf: float = 0.05, min_delay: float = 0.3, **env: str) -> Process:
        """`manage.py sandbox` on its port; waits until it answers."""
        cmd = [PYTHON, MANAGE, "sandbox", "--port", str(self.sandbox_port)]
        cmd += ["--rtf", str(rtf), "--min-delay", str(min_delay)]
        process = self.start("sandbox", cmd, env)
        self.wait_http(f"{self.sandbox_url}/_sandbox/health", process)
        return process

    def start_web(self, *, workers: int = 2, threads: int = 8, **env: str) -> Process:
        """gunicorn as runstudio runs it; waits until the login page answers."""
        cmd = [
            PYTHON, "-m", "gunicorn", "lipsync_site.wsgi",
            "--bind", f"127.0.0.1:{self.web_port}",
            "--worker-class", "gthread",
            "--workers", str(workers),
            "--threads", str(threads),
            "--timeout", "300",
            "--chdir", str(BASE_DIR),
        ]  # fmt: skip
        if _gunicorn_major() >= 24:
            # Not the one control socket in ~/.gunicorn that every gunicorn
            # on the machine would share (chaos runs several studios).
            cmd.append("--no-control-socket")
        process = self.start("web", cmd, env)
        self.wait_http(f"{self.web_url}/login/", process)
        return process

    def start_node(self, name: str = "node1", *, workers: int = 2, **env: str) -> Process:
        """`manage.py qcluster`; waits until django-q says the cluster runs."""
        process = self.start(name, [PYTHON, MANAGE, "qcluster"], {"Q_WORKERS": str(workers), **env})
        self.wait_node(name)
        return process

    # --- crashing and restarting ------------------------------------------------------

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    def stop(self, name: str) -> None:
        self.processes[name].stop()

    def restart(self, name: str) -> Process:
        """Start `name` again with its command and env (stopping it first if it
        runs), and wait until it is ready."""
        process = self.processes[name].restart()
        if name == "sandbox":
            self.wait_http(f"{self.sandbox_url}/_sandbox/health", process)
        elif name == "web":
            self.wait_http(f"{self.web_url}/login/", process)
        elif process.cmd[-1] == "qcluster":
            self.wait_node(name)
        return process

    def stop_all(self, timeout: float = 10.0) -> None:
        """Ask every process to stop at once (SIGTERM), then wait for each
        and SIGKILL whatever is left."""
        for process in self.processes.values():
            if process.alive:
                process.popen.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            process.stop(timeout=timeout)

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    # --- waiting ---------------------------------------------------------------------

    def tails(self, lines: int = 25) -> str:
        return "\n".join(
            f"----- {name} ({'running' if p.alive else 'not running'}), last {lines} lines:\n"
            f"{p.tail(lines)}"
            for name, p in self.processes.items()
        )

    def wait_until(
        self,
        condition: Callable[[], object],
        *,
        timeout: float,
        what: str,
        interval: float = 0.2,
    ) -> object:
        """Poll `condition` until it is truthy (returns its value); after
        `timeout` seconds raise AssertionError naming `what`, with every
        process's log tail."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s.\n{self.tails()}")
            time.sleep(interval)

    def wait_http(self, url: str, process: Process, *, timeout: float = 30.0) -> None:
        def answers() -> bool:
            if not process.alive:
                raise AssertionError(f"{process.name} exited.\n{self.tails()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status < 500
            except urllib.error.HTTPError as exc:
                return exc.code < 500
            except OSError:
                return False

        self.wait_until(answers, timeout=timeout, what=f"{process.name} answering at {url}")

    def wait_node(self, name: str, *, timeout: float = 30.0) -> None:
        """Until this start of the node has logged django-q's 'running'."""
        process = self.processes[name]

        def running() -> bool:
            if not process.alive:
                raise AssertionError(f"{name} exited.\n{self.tails()}")
            log = process.log()
            return "running." in log[log.rfind(f"--- start #{process.starts}:") :]

        self.wait_until(running, timeout=timeout, what=f"{name} starting")
