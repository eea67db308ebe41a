"""End to end over real HTTP: a script submits a talking photo by URL to the
studio (live server), the sandbox provider makes it, the script polls
GET /api/v1/jobs/{id} until it is completed and fetches `output` with a
Range request, as a player seeking would."""

import pytest
import requests

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import Job, Pool
from jobs.pipeline import poller
from tests.pipeline_support import GRANT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_submit_by_url_poll_until_completed_and_seek_in_the_output(
    pipeline, alice, media_server, settings
):
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    credits_grant(user=alice, pool=Pool.API, amount=100, key="grant:alice:api:e2e")
    _key, raw = api_key_create(owner=alice, name="e2e")
    http = requests.Session()
    http.trust_env = False
    http.headers["Authorization"] = f"Bearer {raw}"
    base = f"{pipeline.studio_url}/api/v1"

    submitted = http.post(
        f"{base}/lipsync-image",
        json={
            "formState": {
                "image": media_server.link("face.png"),
                "audio": media_server.link("voice.mp3"),
                "resolution": "480p",
            }
        },
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json() == {"id": job_id, "status": "processing"}

    answers = []

    def poll():
        poller.poll_due(max_seconds=0.5)  # the cluster's poll loop, driven by hand
        answers.append(http.get(f"{base}/jobs/{job_id}", timeout=10).json())

    wait_until(
        lambda: answers and answers[-1]["status"] != "processing",
        step=poll,
        timeout=60,
        interval=0.2,
        what="the job completing",
    )
    done = answers[-1]
    assert done["status"] == "completed", done
    assert done["model"] == "lipsync-image" and done["error"] == ""
    assert done["executionTime"] > 0

    # The output: no key, no session, seekable.
    player = requests.Session()
    player.trust_env = False
    head = player.get(done["output"], headers={"Range": "bytes=0-11"}, timeout=10)
    assert head.status_code == 206
    assert head.headers["Content-Type"] == "video/mp4"
    assert head.content[4:8] == b"ftyp"  # an MP4 starts with its ftyp box
    size = int(head.headers["Content-Range"].rsplit("/", 1)[1])
    job = Job.objects.get(uuid=job_id)
    assert size == job.output.size
    tail = player.get(done["output"], headers={"Range": f"bytes={size - 100}-"}, timeout=10)
    assert tail.status_code == 206 and len(tail.content) == 100

    # API credits were spent; the studio's were not.
    balances = credits_balances(user=alice)
    assert balances[Pool.API].balance == 100 - job.credits_charged
    assert balances[Pool.API].held == 0
    assert (balances[Pool.STUDIO].balance, balances[Pool.STUDIO].held) == (GRANT, 0)
