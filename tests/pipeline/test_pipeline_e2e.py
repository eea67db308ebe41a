"""JoyPix jobs end to end over real HTTP (a dialog, and a talking photo on
motion-2): the studio on a live server, the sandbox provider fetching its
inputs from it, the poll loop and archive as the cluster runs them, and the
member fetching the finished video."""

import math

import pytest
import requests
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs import tasks
from jobs.credits.ledger import InsufficientCredits, credits_grant
from jobs.models import EntryKind, Job, Pool, Upload
from jobs.pipeline import lifecycle, poller
from jobs.providers.routing import adapter_for, endpoint_for
from jobs.providers.sandbox import RESOLUTIONS
from tests.pipeline_support import (
    GRANT,
    SANDBOX_KEY,
    assert_playable,
    create_talking_photo,
    ledger_check,
    run_until_terminal,
    state_of,
    wait_until,
)


@pytest.mark.parametrize(
    ("resolution", "left", "right", "credits_per_unit", "units"),
    [
        ("480p", 3.2, 6.1, 15, 2),  # 6.1 s: two started 5 s units
        ("720p", 4.4, 2.1, 30, 1),
    ],
)
def test_a_dialog_job_becomes_a_playable_video_charged_for_its_length(
    pipeline, alice, resolution, left, right, credits_per_unit, units
):
    longer = max(left, right)
    job = pipeline.create_dialog(
        left=left,
        right=right,
        resolution=resolution,
        prompt="the left man speaks happily, the right woman smiles",
        seed=42,
    )

    # Created queued, with the quoted price held.
    assert job.state == "queued"
    price = units * credits_per_unit
    assert job.credits_held == price
    assert job.inputs.count() == 3

    # The submit ran on commit: one POST, one task, the job is processing.
    job.refresh_from_db()
    assert job.state == "processing", job.error
    assert job.submit_attempts == 1
    assert pipeline.submissions() == 1
    [task] = pipeline.sandbox.tasks.values()
    assert job.provider_task_id == task.id
    assert pipeline.studio_balance().available == GRANT - price

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    assert done.error == ""
    # Exactly one submission, answered 200, with JoyPix's JSON body. The sandbox
    # only creates a task for a request bearing its key, so the Bearer key went too.
    assert pipeline.submissions() == 1
    assert [c.status for c in pipeline.submit_calls()] == [200]
    assert len(pipeline.sandbox.tasks) == 1
    inputs = {field: url for field, (_role, url) in task.inputs.items()}
    assert set(inputs) == {"left_audio_url", "right_audio_url", "image_url"}
    assert task.echo == {
        **inputs,
        "resolution": resolution,
        "prompt": "the left man speaks happily, the right woman smiles",
        "seed": 42,
    }
    assert all(url.startswith(pipeline.studio_url + "/inputs/") for url in inputs.values())
    assert all(c.status == 200 for c in pipeline.poll_calls())

    # The archived output is a playable MP4 at the requested size, as long as the
    # longer clip.
    info = assert_playable(done, resolution, longer)

    # Charged the price for its duration; the rest of the hold went back.
    assert units == math.ceil(round(info.duration, 3) / 5)
    assert done.credits_charged == price
    assert pipeline.entries(done) == [(EntryKind.HOLD, price), (EntryKind.CAPTURE, price)]
    balance = pipeline.studio_balance()
    assert (balance.balance, balance.held, balance.available) == (GRANT - price, 0, GRANT - price)
    assert "Ledger OK" in ledger_check()

    # The provider's links to the inputs stop working once the job has ended.
    for url in inputs.values():
        assert requests.get(url, timeout=5).status_code == 404


JOYPIX_PHOTO_SUBMIT = "/v1/lip-sync/motion-2"


def test_a_joypix_talking_photo_becomes_a_playable_video_at_motion_2s_price(pipeline, alice):
    job = create_talking_photo(
        pipeline, provider="joypix", seconds=6.1, resolution="720p", prompt="smiles", seed=9
    )

    # Quoted on its one clip at motion-2's (assumed) rate: 6.1 s is two 5 s units at 30.
    assert (job.provider_model, job.credits_held) == ("motion-2", 60)
    job.refresh_from_db()
    assert job.state == "processing", job.error

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    # One POST to motion-2 with its body, none to motion-2-dialog; polled on /v1/tasks.
    [submit] = [c for c in pipeline.sandbox.calls if c.method == "POST"]
    assert (submit.path, submit.status) == (JOYPIX_PHOTO_SUBMIT, 200)
    assert pipeline.submissions() == 0
    [task] = pipeline.sandbox.tasks.values()
    assert (task.model, done.provider_task_id) == ("motion-2", task.id)
    inputs = {field: url for field, (_role, url) in task.inputs.items()}
    assert set(inputs) == {"audio_url", "image_url"}
    assert task.echo == {**inputs, "resolution": "720p", "prompt": "smiles", "seed": 9}
    assert pipeline.poll_calls() and all(c.status == 200 for c in pipeline.poll_calls())

    assert_playable(done, "720p", 6.1)
    assert done.credits_charged == 60
    assert pipeline.entries(done) == [(EntryKind.HOLD, 60), (EntryKind.CAPTURE, 60)]
    assert pipeline.studio_balance().available == GRANT - 60
    assert "Ledger OK" in ledger_check()


def test_the_finished_video_is_served_with_range_to_its_owner_only(pipeline, alice, bob):
    job = run_until_terminal(pipeline.create_dialog(left=1.2, right=2.5))
    assert job.state == "completed", job.error
    url = pipeline.studio_url + reverse("job_video", args=[job.pk])
    size = default_storage.size(job.output.name)
    owner = pipeline.browser(alice)

    whole = owner.get(url, timeout=5)
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert len(whole.content) == size
    with default_storage.open(job.output.name, "rb") as fh:
        assert whole.content == fh.read()

    part = owner.get(url, headers={"Range": "bytes=100-1099"}, timeout=5)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{size}"
    assert part.content == whole.content[100:1100]
    tail = owner.get(url, headers={"Range": "bytes=-500"}, timeout=5)
    assert tail.status_code == 206 and tail.content == whole.content[-500:]

    # Shared to the team's gallery (the default), another member can play it;
    # once private, they get a 404, and anyone signed out is sent to sign in.
    assert job.shared
    assert (
        pipeline.browser(bob).get(url, headers={"Range": "bytes=0-9"}, timeout=5).status_code == 206
    )
    Job.objects.filter(pk=job.pk).update(shared=False)
    assert pipeline.browser(bob).get(url, timeout=5).status_code == 404
    anonymous = requests.get(url, allow_redirects=False, timeout=5)
    assert anonymous.status_code == 302 and "/login/" in anonymous.headers["Location"]
    assert owner.get(url, headers={"Range": "bytes=0-9"}, timeout=5).status_code == 206


def test_a_second_run_of_each_task_does_nothing(pipeline, alice, monkeypatch):
    """The cluster may deliver a task twice (a retry after a lost ack, a killed
    worker): the second run changes nothing and sends nothing."""
    deferred: list[tuple[str, tuple]] = []
    monkeypatch.setattr(lifecycle, "enqueue", lambda func, *args: deferred.append((func, args)))
    job = pipeline.create_dialog()
    assert deferred == [("jobs.tasks.submit_job", (job.pk,))]

    tasks.submit_job(job.pk)
    tasks.submit_job(job.pk)
    job.refresh_from_db()
    assert job.state == "processing" and job.submit_attempts == 1
    assert pipeline.submissions() == 1

    # Poll (as the loop does, without its own archiving) until the provider is
    # done; the archive task is queued, not run.
    def poll_once():
        adapter = adapter_for(endpoint_for("joypix"))
        with adapter:
            for claimed in lifecycle.polls_claim_due(limit=10):
                lifecycle.job_status_apply(
                    claimed, result=lifecycle.job_status_fetch(claimed, adapter=adapter)
                )
        return ("jobs.tasks.archive_job", (job.pk,)) in deferred

    wait_until(poll_once, what="the archive task being queued")
    assert Job.objects.get(pk=job.pk).state == "archiving"

    tasks.archive_job(job.pk)
    tasks.archive_job(job.pk)
    job.refresh_from_db()
    assert job.state == "completed"
    assert job.archive_attempts == 1
    assert pipeline.entries(job) == [
        (EntryKind.HOLD, job.credits_held),
        (EntryKind.CAPTURE, job.credits_charged),
    ]
    output = job.output.name
    # The job page's timeline, each step stamped in order; the sandbox reports
    # the seed it drew for "random" (-1), as JoyPix's echoed inputs would.
    stamps = [job.created_at, job.sent_at, job.submitted_at, job.first_status_at]
    stamps += [job.provider_completed_at, job.archived_at]
    assert None not in stamps and stamps == sorted(stamps)
    assert job.seed == -1 and job.provider_seed is not None and job.provider_seed >= 0
    # Later duplicates too: nothing moves, nothing is sent or charged again.
    tasks.submit_job(job.pk)
    tasks.archive_job(job.pk)
    tasks.poll_job(job.pk)
    lifecycle.jobs_reconcile()
    job.refresh_from_db()
    assert (job.state, job.output.name, job.archive_attempts) == ("completed", output, 1)
    assert pipeline.submissions() == 1
    assert len(pipeline.entries(job)) == 2
    assert "Ledger OK" in ledger_check()
    assert SANDBOX_KEY not in job.error


def test_several_jobs_of_two_members_finish_in_one_poll_loop(pipeline, alice, bob):
    """One loop polls them together (several requests in flight over one session)
    and each is archived and settled on its own account."""
    credits_grant(user=bob, pool=Pool.STUDIO, amount=100, key="grant:bob:pipeline")
    jobs = [
        pipeline.create_dialog(left=1.2, right=2.0),
        pipeline.create_dialog(left=5.6, right=1.0, resolution="720p"),
        pipeline.create_dialog(left=2.5, right=1.5, owner=bob),
        pipeline.create_dialog(left=1.0, right=3.0, resolution="720p", owner=bob),
    ]
    assert pipeline.submissions() == 4

    wait_until(
        lambda: all(state_of(job) in ("completed", "failed") for job in jobs),
        step=lambda: poller.poll_due(max_seconds=2),
        what="all four jobs finishing",
    )

    done = [Job.objects.get(pk=job.pk) for job in jobs]
    assert [job.state for job in done] == ["completed"] * 4, [job.error for job in done]
    assert [job.credits_charged for job in done] == [15, 60, 15, 30]
    assert [(job.output_width, job.output_height) for job in done] == [
        RESOLUTIONS["480p"],
        RESOLUTIONS["720p"],
        RESOLUTIONS["480p"],
        RESOLUTIONS["720p"],
    ]
    assert len({job.output.name for job in done}) == 4
    assert pipeline.studio_balance(alice).available == GRANT - 75
    assert pipeline.studio_balance(bob).available == 100 - 45
    assert pipeline.submissions() == 4
    assert "Ledger OK" in ledger_check()


def test_without_enough_credits_nothing_is_kept_or_sent(pipeline, alice, bob):
    credits_grant(user=bob, pool=Pool.STUDIO, amount=20, key="grant:bob:small")
    files = pipeline.dialog_files(3.2, 6.1, owner=bob)  # 30 credits at 480p

    with pytest.raises(InsufficientCredits, match="needs 30"):
        lifecycle.job_create(
            owner=bob, mode="dialog", provider="joypix", resolution="480p", files=files
        )

    assert not Job.objects.filter(owner=bob).exists()
    # The staged uploads stay, for the member to try again with more credits.
    assert Upload.objects.filter(owner=bob).count() == 3
    assert all(default_storage.exists(upload.file.name) for upload in files.values())
    assert pipeline.studio_balance(bob).available == 20
    assert pipeline.submissions() == 0
    assert "Ledger OK" in ledger_check()
