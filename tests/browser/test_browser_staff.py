"""In a real browser: staff open the dashboard from the admin, read a month
of figures and the spend chart, change the period, and refund a job.

Screenshots go to tests/artifacts/ (staff-dashboard*.png) for a person to look at.
"""

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from jobs.credits.ledger import credits_adjust
from jobs.models import Job, JobState
from jobs.staff.actions import job_refund
from tests.factories import at, make_job
from tests.staff_support import grant, local

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MIN = timedelta(minutes=1)


def a_month_of_work(alice, bob, staff):
    carol = get_user_model().objects.create_user("carol", "carol@example.com", "x")
    rng = random.Random(5)
    grant(alice, 5000, local(29))
    grant(bob, 3000, local(27))
    grant(carol, 2000, local(20))
    grant(alice, 1500, local(18), pool="api")
    for days_ago in range(28, -1, -1):
        for n in range(rng.randint(0, 4)):
            owner = rng.choice([alice, bob, carol])
            provider = rng.choice(["joypix", "joypix", "lipsync_studio"])
            api = provider == "lipsync_studio" and owner == alice
            held = rng.choice([15, 30, 45, 60, 90])
            fails = rng.random() < 0.12
            make_job(
                owner,
                provider=provider,
                pool="api" if api else "studio",
                state=JobState.FAILED if fails else JobState.COMPLETED,
                created=local(days_ago, 9 + n * 2, rng.randint(0, 59)),
                held=held,
                charged=held - rng.choice([0, 0, 15]) if held > 15 else held,
                submitted_after=MIN,
                provider_done_after=rng.randint(3, 12) * MIN,
                finished_after=rng.randint(13, 25) * MIN,
            )
    for owner, state in [(bob, JobState.PROCESSING), (carol, JobState.QUEUED)]:
        make_job(owner, state=state, created=local(0, 0, 10), held=60, submitted_after=MIN)
    # A refund and a correction, as staff make them.
    refunded = Job.objects.filter(owner=bob, state=JobState.COMPLETED).order_by("pk").first()
    at(job_refund(job=refunded, by=staff, reason="Garbled audio").entry, local(4, 16))
    fix = credits_adjust(user=carol, pool="studio", amount=-250, key="fix", reason="Double grant")
    at(fix, local(15))
    return carol


def test_staff_read_the_dashboard_and_refund_a_job(
    page, live_server, sign_in, artifacts, alice, bob, staff
):
    a_month_of_work(alice, bob, staff)
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, staff)

    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Credits, spend per day, jobs and open holds").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff dashboard")

    chart = page.get_by_role("img", name="Credits spent per day")
    expect(chart).to_be_visible()
    expect(page.locator("svg.chart rect.bar-studio").first).to_be_visible()
    expect(page.get_by_role("heading", name="Open holds now: 2 holds, 120 credits")).to_be_visible()
    expect(page.locator("#holds")).to_contain_text("bob")
    expect(page.locator("#credits")).to_contain_text("carol")
    expect(page.get_by_role("link", name="Last 30 days")).to_have_attribute("aria-current", "true")
    page.screenshot(path=artifacts / "staff-dashboard.png", full_page=True)

    page.emulate_media(color_scheme="dark")
    page.screenshot(path=artifacts / "staff-dashboard-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")

    # The table behind the chart opens from the keyboard.
    page.get_by_text("Spend per day as a table").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#spend-table table")).to_be_visible()

    # A shorter period through the date inputs.
    page.get_by_label("From").fill(f"{local(6).date():%Y-%m-%d}")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#spend-table tbody tr")).to_have_count(7)

    # The CSV downloads for that period.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the ledger (CSV)").click()
    assert download.value.suggested_filename.startswith(f"ledger-{local(6).date():%Y-%m-%d}")

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "staff-dashboard-phone.png", full_page=True)
    page.set_viewport_size({"width": 1360, "height": 900})

    # From an open hold to the job, and refund it with a reason.
    page.locator("#holds").get_by_role("link", name="#").first.click()
    expect(page.get_by_role("link", name="Refund…")).to_be_visible()
    page.get_by_role("link", name="Refund…").click()
    expect(page.locator("#job-plan")).to_contain_text("release its hold of 60 credits")
    page.get_by_label("Reason").fill("The provider is down")
    page.screenshot(path=artifacts / "staff-refund-form.png", full_page=True)
    page.get_by_role("button", name="Refund 1 job").click()
    expect(page.locator(".messagelist")).to_contain_text("releasing 60 held credits")
    expect(page.locator(".job-state").first).to_have_text("Failed")
    page.screenshot(path=artifacts / "staff-job-refunded.png", full_page=True)

    # The jobs list, filtered to failures, with state pills.
    page.goto(f"{live_server.url}/admin/jobs/job/?state=failed")
    expect(page.locator("#result_list .job-state-failed").first).to_be_visible()
    page.screenshot(path=artifacts / "staff-jobs-failed.png")
