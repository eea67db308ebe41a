"""Issue 9: a provider (or a compromised one) whose output link leads to an
internal address must not make the cluster fetch it. The job fails at once,
saying why; nothing is charged and the internal address is never asked.

The sandbox's links are on loopback, which the pipeline fixture allows (as
`./studio run` does); a redirect never gets that allowance, so an "internal"
server on another loopback port stands for the internal network."""

import logging

from jobs.models import Job
from jobs.pipeline import lifecycle, poller
from tests.fetch_support import LoopbackServer
from tests.pipeline_support import (
    assert_released,
    ledger_check,
    run_until_terminal,
    wait_until,
)


def _outputs_through(pipeline, server: LoopbackServer) -> None:
    """The sandbox hands out output links on `server` instead of itself."""
    pipeline.sandbox.config.public_url = server.url


def test_an_output_link_redirecting_to_an_internal_address_fails_the_job_unfetched(
    pipeline, serve, caplog
):
    internal = serve(LoopbackServer.body(b"internal admin page"))
    provider_cdn = serve(LoopbackServer.redirect(f"http://127.0.0.1:{internal.port}/admin"))
    _outputs_through(pipeline, provider_cdn)

    with caplog.at_level(logging.WARNING, logger="jobs"):
        done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert "refused to download the provider's video" in done.error
    assert "redirects to a loopback address" in done.error
    assert "Nothing was charged" in done.error
    assert str(internal.port) not in done.error
    assert_released(done)
    ledger_check()
    assert [s.path.startswith("/outputs/") for s in provider_cdn.seen] == [True]
    assert internal.seen == []
    refusal = [r.getMessage() for r in caplog.records if "was refused" in r.getMessage()]
    assert len(refusal) == 1 and f"job {done.pk}" in refusal[0]
    assert "/outputs/" not in refusal[0]  # the host, never the link


def test_an_output_link_redirecting_to_a_private_address_is_refused_before_connecting(
    pipeline, serve, net
):
    provider_cdn = serve(LoopbackServer.redirect("http://169.254.169.254/latest/meta-data/"))
    _outputs_through(pipeline, provider_cdn)

    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert "redirects to a link-local address" in done.error
    assert_released(done)
    assert len(provider_cdn.seen) == 1
    assert not any(host == "169.254.169.254" for host, _ in net.connects)


def test_without_the_loopback_setting_a_loopback_output_link_is_refused(pipeline, settings):
    """What production does with a provider's link to 127.0.0.1."""
    settings.FETCH_ALLOW_LOOPBACK = False

    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert "resolves to a loopback address" in done.error
    assert_released(done)
    assert not [c for c in pipeline.sandbox.calls if c.path.startswith("/outputs/")]
    assert pipeline.submissions() == 1  # the provider API itself is not the guard's


def test_an_output_that_cannot_be_fetched_yet_is_archived_later_not_failed(pipeline, serve):
    """Only a refusal fails the job: a provider's error is waited out as before."""
    busy = serve(LoopbackServer.body(b"busy", status=503))
    _outputs_through(pipeline, busy)
    job = pipeline.create_dialog()

    def archived_once():
        return Job.objects.filter(pk=job.pk, archive_attempts__gte=1).exists()

    wait_until(archived_once, step=lambda: poller.poll_due(max_seconds=1.0), what="an archive try")

    job.refresh_from_db()
    assert job.state == "archiving" and job.error == ""
    assert job.next_poll_at is not None and len(busy.seen) >= 1

    # The provider serves the video again: the next try archives it.
    pipeline.sandbox.config.public_url = None
    Job.objects.filter(pk=job.pk).update(
        next_poll_at=job.next_poll_at.replace(year=2000),
        output_url=job.output_url.replace(busy.url, pipeline.sandbox.url),
    )
    lifecycle.job_archive(job.pk)
    job.refresh_from_db()
    assert job.state == "completed" and job.credits_charged > 0
