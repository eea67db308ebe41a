"""Run the whole studio in the foreground: web server, task cluster and, unless
real provider accounts are configured, the sandbox provider. Ctrl-C stops all."""

import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server, the django-q2 cluster and the sandbox provider together."

    def add_arguments(self, parser):
        parser.add_argument("--no-sandbox", action="store_true", help="Do not start the sandbox.")

    def handle(self, *args, no_sandbox: bool, **options):
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        processes = {
            "web": web_command(bind=f"127.0.0.1:{settings.PORT}"),
            "cluster": [python, manage, "qcluster"],
        }
        env = os.environ.copy()
        if not no_sandbox and _sandbox_wanted():
            processes["sandbox"] = [python, manage, "sandbox", "--port", str(settings.SANDBOX_PORT)]
            # The sandbox's output links are on 127.0.0.1; the fetch guard
            # refuses loopback unless told (see jobs/fetch.py).
            env["FETCH_ALLOW_LOOPBACK"] = "1"

        # Ctrl-C and a plain `kill` (SIGTERM) only ask for the stop, which then runs
        # once: a second Ctrl-C, pressed while the children are stopping, must not
        # interrupt it with a traceback. SIGINT is set explicitly: a shell's
        # background job inherits it ignored (and so would the children).
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: stop.set())
        children: dict[str, subprocess.Popen] = {}
        code = 0
        try:
            for name, cmd in processes.items():
                # Each child in its own session: a terminal's Ctrl-C reaches only
                # this command, which stops each child once. Sent to the whole
                # group, a second press hit the cluster's processes while they
                # were exiting and printed a KeyboardInterrupt traceback.
                children[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nLipsync Studio is running at {settings.PUBLIC_BASE_URL}/  "
                    f"({', '.join(children)}; Ctrl-C stops all)\n"
                )
            )
            while not stop.wait(0.5):
                ended = [(n, c.returncode) for n, c in children.items() if c.poll() is not None]
                if ended and not stop.is_set():  # not the Ctrl-C that stopped it too
                    name, returncode = ended[0]
                    self.stderr.write(f"{name} stopped (exit {returncode}); stopping.")
                    code = returncode or 1
                    break
        finally:
            _stop_all(children)
        sys.exit(code)


def web_command(*, bind: str) -> list[str]:
    """The web server as the run command starts it (bench/load.py measures
    this very configuration)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "lipsync_site.wsgi",
        "--bind",
        bind,
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        "--threads",
        "8",
        # Large uploads and slow clients: do not kill a worker mid-upload.
        "--timeout",
        "300",
        "--access-logfile",
        "-",
        "--chdir",
        str(settings.BASE_DIR),
    ]


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def _sandbox_wanted() -> bool:
    """The sandbox runs unless every provider has a real account configured."""
    from jobs.providers.routing import sandbox_needed

    return sandbox_needed()
