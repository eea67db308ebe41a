"""The README's ten-line Python script, exactly as printed there, makes a
talking photo through the API against the studio on the sandbox."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.files import media
from jobs.models import Job, Pool
from jobs.pipeline import poller
from tests.pipeline_support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_script() -> str:
    text = README.read_text()
    section = text[text.index("## REST API") :]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the REST API section has no Python block"
    script = blocks[0]
    lines = [line for line in script.splitlines() if line.strip()]
    assert len(lines) <= 10
    return script


def test_the_readme_script_makes_a_talking_photo(pipeline, alice, media_files, tmp_path, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    credits_grant(user=alice, pool=Pool.API, amount=100, key="grant:alice:api:readme")
    _key, raw = api_key_create(owner=alice, name="readme")
    script = tmp_path / "talking_photo.py"
    script.write_text(readme_script())
    env = os.environ | {
        "STUDIO_URL": pipeline.studio_url,
        "STUDIO_API_KEY": raw,
        "NO_PROXY": "*",
    }
    process = subprocess.Popen(
        [sys.executable, str(script), str(media_files["face.png"]), str(media_files["voice.mp3"])],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The cluster's poll loop, driven by hand while the script polls.
        wait_until(
            lambda: process.poll() is not None,
            step=lambda: poller.poll_due(max_seconds=0.5),
            timeout=90,
            interval=0.2,
            what="the README script finishing",
        )
    finally:
        if process.poll() is None:
            process.kill()
    _out, err = process.communicate()
    assert process.returncode == 0, err
    job = Job.objects.get()
    assert (job.source, job.pool, job.state) == ("api", "api", "completed")
    video = media.probe_output_video(tmp_path / "talking-photo.mp4")
    assert video.duration == pytest.approx(job.output_seconds, abs=0.1)
