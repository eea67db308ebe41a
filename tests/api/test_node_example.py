"""The lipsync.studio page's Node.js example (tests/api/node/lipsync_example.mjs,
as the page prints it) runs with Node against the studio on the sandbox.

Only what a team would change is replaced: the base URL, the key, the two
example.com inputs (a real photo and voice served on loopback) and the webhook
(the example's own express server on port 3000). The example submits a talking
photo on the API credits and then waits for its webhook: the studio POSTs the
result there when the job ends, the example prints it, and the test checks
what it printed and that the output plays.

`./studio test` installs express and node-fetch (npm ci in tests/api/node/).
Without Node the test skips, unless STUDIO_REQUIRE_NODE=1 (CI): then it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import Job, Pool, WebhookDelivery
from jobs.pipeline import poller
from tests.pipeline_support import GRANT, assert_playable, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

NODE_DIR = Path(__file__).parent / "node"
EXAMPLE = NODE_DIR / "lipsync_example.mjs"
WEBHOOK_PORT = 3000  # the example's app.listen(3000)
WEBHOOK_URL = f"http://127.0.0.1:{WEBHOOK_PORT}/webhooks/lipsync"
SECONDS = 1.5  # the voice's length, so the video's
API_GRANT = 100


def _node_or_skip() -> str:
    """The node binary, once `./studio test` has installed the example's packages."""
    node = shutil.which("node")
    installed = all(
        (NODE_DIR / "node_modules" / name).is_dir() for name in ("express", "node-fetch")
    )
    if node and installed:
        return node
    why = (
        "Node.js is not on the PATH"
        if not node
        else f"express and node-fetch are not installed in {NODE_DIR} "
        "(./studio test installs them: npm ci --prefix tests/api/node)"
    )
    if os.environ.get("STUDIO_REQUIRE_NODE") == "1":
        pytest.fail(f"STUDIO_REQUIRE_NODE=1 and {why}")
    pytest.skip(f"the Node.js example needs Node: {why}")


def _port_free_or_fail(port: int) -> None:
    """The example listens on 3000 itself; if that is taken, say so up front
    rather than let node die with EADDRINUSE."""
    family, host = (socket.AF_INET6, "::") if socket.has_ipv6 else (socket.AF_INET, "0.0.0.0")
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node's listen does
        probe.bind((host, port))
    except OSError as exc:
        pytest.fail(
            f"port {port} is busy ({exc.strerror}): the page's Node.js example listens on it "
            "for its webhook; stop whatever uses it and run the test again"
        )
    finally:
        probe.close()


def _replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    assert count == 1, f"the example should hold {old!r} exactly once, it holds it {count} times"
    return text.replace(old, new)


def example_for(*, base_url: str, raw_key: str, image: str, audio: str) -> str:
    """The page's example with only its placeholders replaced."""
    text = EXAMPLE.read_text()
    for old, new in (
        ("'https://lipsync.studio/api/v1'", f"'{base_url}'"),
        ("'Bearer sk_XXXX_YYYY'", f"'Bearer {raw_key}'"),
        ("'https://example.com/portrait.jpg'", f"'{image}'"),
        ("'https://example.com/speech.mp3'", f"'{audio}'"),
        ("'https://your-public-domain.com/webhooks/lipsync'", f"'{WEBHOOK_URL}'"),
    ):
        text = _replace_once(text, old, new)
    return text


class NodeProcess:
    """`node script` with its output collected line by line in the background."""

    def __init__(self, node: str, script: Path) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.process = subprocess.Popen(
            [node, str(script)],
            cwd=script.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in (
                (self.process.stdout, self.lines),
                (self.process.stderr, self.errors),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(["stdout:", *self.lines, "stderr:", *self.errors])

    def find(self, pattern: str) -> re.Match | None:
        for line in list(self.lines):
            if found := re.fullmatch(pattern, line):
                return found
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """The example never exits by itself (its express server keeps it up)."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)


@pytest.fixture
def inputs(pipeline, serve, settings):
    """A real photo and voice on loopback, under the example's own file names
    (the SSRF guard lets loopback through in tests: FETCH_ALLOW_LOOPBACK)."""
    settings.FETCH_ALLOW_LOOPBACK = True
    files = {"portrait.jpg": pipeline.photo(), "speech.mp3": pipeline.audio(SECONDS)}

    def respond(h: BaseHTTPRequestHandler) -> None:
        path = files.get(h.path.lstrip("/"))
        data = path.read_bytes() if path else b""
        h.send_response(200 if path else 404)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    server = serve(respond)
    return {name: f"{server.url}/{name}" for name in files}


def test_the_pages_node_example_makes_a_talking_photo_on_api_credits(
    pipeline, alice, inputs, tmp_path, settings
):
    node = _node_or_skip()
    _port_free_or_fail(WEBHOOK_PORT)
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    credits_grant(user=alice, pool=Pool.API, amount=API_GRANT, key="grant:alice:api:node")
    key, raw = api_key_create(owner=alice, name="node example")
    base = f"{pipeline.studio_url}/api/v1"

    # The copy sits beside a link to the installed packages: ES modules resolve
    # node_modules from the script's folder up (NODE_PATH does not apply to them).
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules", target_is_directory=True)
    script = tmp_path / "lipsync_example.mjs"
    script.write_text(
        example_for(
            base_url=base,
            raw_key=raw,
            image=inputs["portrait.jpg"],
            audio=inputs["speech.mp3"],
        )
    )

    example = NodeProcess(node, script)
    try:
        wait_until(
            lambda: example.find(r"Job submitted: (.*)") or not example.alive(),
            timeout=60,
            interval=0.1,
            what="the example printing 'Job submitted: <id>'",
        )
        submitted = example.find(r"Job submitted: (.*)")
        assert submitted, f"the example ended without submitting:\n{example.output()}"
        job_id = submitted[1]
        assert re.fullmatch(r"[0-9a-f-]{36}", job_id), example.output()
        assert example.alive(), f"the example stopped:\n{example.output()}"
        wait_until(
            lambda: example.find(r"Webhook server listening on port 3000") is not None,
            timeout=15,
            what="the example's webhook server listening",
        )

        # No polling: the cluster's poll loop (driven by hand) makes and
        # archives the video, and the studio POSTs the result to the
        # example's own webhook, which prints what it received.
        wait_until(
            lambda: example.find(r"Video URL: (.*)") or example.find(r"Status: failed"),
            step=lambda: poller.poll_due(max_seconds=0.5),
            timeout=90,
            interval=0.2,
            what="the example printing the webhook it received",
        )
        received = example.output()
        assert example.find(f"Job ID: {re.escape(job_id)}"), received
        assert example.find(r"Model: lipsync-image"), received
        assert example.find(r"Status: completed"), received
        done = {"output": example.find(r"Video URL: (.*)")[1]}
        delivery = WebhookDelivery.objects.get(job__uuid=job_id)
        assert (delivery.status, delivery.attempts) == ("delivered", 1)
        assert delivery.payload["output"] == done["output"]
        job = Job.objects.get(uuid=job_id)
        assert job.api_webhook == WEBHOOK_URL
        assert example.alive(), f"the example stopped:\n{example.output()}"
    finally:
        example.stop()

    # The output, with no key and no session: whole, and seekable.
    player = requests.Session()
    player.trust_env = False
    whole = player.get(done["output"], timeout=30)
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "video/mp4"
    stored = Path(job.output.path).read_bytes()
    assert whole.content == stored
    part = player.get(done["output"], headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(stored)}"
    assert part.content == stored[100:200]
    assert_playable(job, "720p", SECONDS)

    # The job was the key's, on API credits; the studio credits were not touched.
    assert (job.source, job.pool, job.api_key_id) == ("api", "api", key.pk)
    assert job.credits_charged > 0
    balances = credits_balances(user=alice)
    assert (balances[Pool.API].balance, balances[Pool.API].held) == (
        API_GRANT - job.credits_charged,
        0,
    )
    assert (balances[Pool.STUDIO].balance, balances[Pool.STUDIO].held) == (GRANT, 0)
