"""Every page a member or staff member can reach, in real Chromium, under the
Content-Security-Policy: no page breaks it (no inline script, handler or style
attribute, no eval in htmx) and none logs an error at all (a 404 favicon, a
failed request, an exception), including while htmx swaps parts of it.

Screenshots of the Studio and the dashboard go to tests/artifacts/ (csp-*.png)."""

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from playwright.sync_api import expect

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.models import Job
from jobs.pipeline import lifecycle
from jobs.providers.accounts import provider_account_save
from tests.browser_support import full_page_shot
from tests.pipeline_support import run_until_terminal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any script of every page: a CSP violation becomes a console error.
REPORT_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.cspViolations.push(e.violatedDirective);
  console.error("CSP violation: " + e.violatedDirective + " blocked " +
                (e.blockedURI || "inline") + " " + (e.sample || ""));
});
"""


class Watch:
    """Console errors, CSP violations and uncaught exceptions, per page."""

    def __init__(self, page):
        self.page = page
        self.where = "start"
        self.problems: list[str] = []
        page.add_init_script(REPORT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"{self.where}: {error}"))

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"{self.where}: {message.text}")

    def visit(self, url: str, label: str | None = None):
        self.where = label or url
        response = self.page.goto(url, wait_until="networkidle")
        assert response.status == 200, f"{url} answered {response.status}"
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, (url, policy)
        return response


@pytest.fixture
def watch(page, live_server):
    page.set_viewport_size({"width": 1360, "height": 1000})
    return Watch(page)


@pytest.fixture
def team(pipeline, alice, staff):
    """A completed, shared job (real video, poster and inputs), a failed one, a
    live one (its progress bar ticks), an API key and a provider account."""
    done = run_until_terminal(pipeline.create_dialog(left=1.0, right=1.2, prompt="hello there"))
    assert done.state == "completed"
    failed = pipeline.create_dialog(left=1.0, right=1.0)
    lifecycle.job_fail(failed, message="The provider could not find a face.")
    pipeline.sandbox.faults.update({"never_finish": 1})
    live = pipeline.create_dialog(left=1.0, right=1.0)
    assert Job.objects.get(pk=live.pk).state == "processing"
    key, _ = api_key_create(owner=alice, name="nightly script")
    provider_account_save(
        api_key="sk_live_never_used_0123456789",
        by=staff,
        provider="joypix",
        name="Team JoyPix",
        # A public address as such: the guard checks it without a DNS query.
        base_url="https://93.184.215.14",
        enabled=False,  # the jobs here stay on the sandbox
    )
    credits_grant(user=staff, pool="studio", amount=50, key="grant:staff")
    return {"done": done, "failed": failed, "live": live, "key": key}


def test_the_watch_catches_markup_that_breaks_the_policy(watch, live_server):
    """The positive control: an inline style and an inline handler are refused,
    and the watch reports both."""
    watch.visit(f"{live_server.url}/login/")
    watch.page.evaluate(
        """document.body.insertAdjacentHTML('beforeend',
             '<p style="color: red">x</p><img src="/favicon.ico" onload="window.ran = 1">')"""
    )
    watch.page.wait_for_function("() => window.cspViolations.length >= 2")
    assert any("style-src-attr" in p for p in watch.problems), watch.problems
    assert any("script-src-attr" in p for p in watch.problems), watch.problems
    assert watch.page.evaluate("window.ran") is None


def test_every_member_page_keeps_to_the_policy(
    team, watch, live_server, sign_in, artifacts, alice, pipeline
):
    url = live_server.url
    page = watch.page
    watch.visit(f"{url}/login/", "sign-in")
    sign_in(page, alice)

    for mode in ("dialog", "talking_photo", "video_dub"):
        watch.visit(f"{url}/?mode={mode}", f"studio ({mode})")
    watch.visit(f"{url}/", "studio")
    # The bars are drawn by the script (no style attribute): the live one shows.
    fill = page.locator(f"#job-{team['live'].pk} .progress span")
    assert fill.evaluate("span => span.getBoundingClientRect().width") > 0

    # htmx at work: another kind of video, files sent as chosen, the cost
    # following the resolution, and a job started whose card comes in.
    watch.where = "studio (htmx)"
    page.get_by_role("link", name="Talking photo").click()
    expect(page.get_by_role("heading", name="Talking photo")).to_be_visible()
    page.get_by_role("link", name="Dialog").click()
    expect(page.get_by_label("Left speaker's audio", exact=True)).to_be_visible()
    page.get_by_label("Photo", exact=True).set_input_files(pipeline.photo())
    expect(page.locator("#field-image .staged")).to_be_visible()
    page.get_by_label("Left speaker's audio", exact=True).set_input_files(pipeline.audio(1.0))
    expect(page.locator("#field-left_audio .staged")).to_be_visible()
    page.get_by_label("Right speaker's audio", exact=True).set_input_files(
        pipeline.audio(1.2, fmt="wav", tone_hz=330)
    )
    # Back from a talking photo (whose default is lipsync.studio) the dialog
    # opens on its own default, JoyPix.
    expect(page.locator("#quote")).to_contain_text("15 credits")
    page.get_by_text("720p").click()
    expect(page.locator("#quote")).to_contain_text("30 credits")
    # The cost is asked for again on resolution or provider only (no eval for a
    # filter): a provider's answer brings the cost with the speaking order.
    asked = []
    page.on(
        "request",
        lambda r: (
            asked.append(r.url) if "/studio/quote/" in r.url or "/provider/" in r.url else None
        ),
    )
    page.get_by_label("Prompt").fill("no new quote for a prompt")
    with page.expect_response("**/studio/provider/"):
        page.get_by_label("Provider").select_option("lipsync_studio")  # blurs the prompt
    assert [url.rsplit("/studio/", 1)[1] for url in asked] == ["provider/"], asked
    expect(page.locator("#quote")).to_contain_text("20 credits")
    page.get_by_role("button", name="Start the job").click()
    cards = page.locator("#job-cards > article.job-card")
    expect(cards).to_have_count(4, timeout=10_000)
    page.locator(f"#job-{team['failed'].pk}").get_by_role("button", name="Try again").click()
    expect(cards).to_have_count(5, timeout=10_000)
    expect(page.locator("#jobs-announce")).to_contain_text(f"tries job #{team['failed'].pk}")
    full_page_shot(page, artifacts / "csp-studio.png")

    done = team["done"]
    watch.visit(f"{url}/gallery/", "gallery")
    page.get_by_label("Search").fill("hello")
    expect(page.locator(".gallery-item")).to_have_count(1)
    watch.visit(f"{url}/gallery/{done.pk}/", "gallery item")
    watch.visit(f"{url}/jobs/{done.pk}/", "job page (completed)")
    watch.visit(f"{url}/jobs/{team['live'].pk}/", "job page (live, polling)")
    watch.visit(f"{url}/?jobs-state=failed", "studio (filtered)")
    watch.where = "studio (filters, htmx)"
    page.locator("#id_jobs-state").select_option("")
    expect(page).to_have_url(f"{url}/")
    watch.visit(f"{url}/credits/", "credits")
    watch.visit(f"{url}/api-keys/", "API keys")
    watch.visit(f"{url}/api-keys/{team['key'].pk}/revoke/", "API key revoke")
    watch.visit(f"{url}/account/password/", "password change")
    watch.visit(f"{url}/account/password/done/", "password changed")
    watch.where = "sign out"
    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You’re signed out.")).to_be_visible()

    assert watch.problems == []


def _admin_pages(staff, team) -> list[tuple[str, str]]:
    """Each registered model's list, add form (where staff may add) and the
    change form of one of its rows, and our own staff pages."""
    request = RequestFactory().get("/admin/")
    request.user = staff
    pages = [("admin index", reverse("admin:index"))]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append((f"{opts.label} list", reverse(f"{name}_changelist")))
        if model_admin.has_add_permission(request):
            pages.append((f"{opts.label} add", reverse(f"{name}_add")))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append((f"{opts.label} change", reverse(f"{name}_change", args=[first.pk])))
    job = team["live"]
    pages += [
        ("dashboard", reverse("admin:jobs_job_dashboard")),
        ("member credits", reverse("admin:auth_user_credits", args=[team["done"].owner_id])),
        ("job refund", reverse("admin:jobs_job_refund", args=[team["done"].pk])),
        ("job fail", reverse("admin:jobs_job_fail", args=[job.pk])),
        ("job change (live)", reverse("admin:jobs_job_change", args=[job.pk])),
    ]
    try:
        pages.append(("password", reverse("admin:auth_user_password_change", args=[staff.pk])))
    except NoReverseMatch:
        pass
    return pages


def test_every_staff_page_keeps_to_the_policy(team, watch, live_server, sign_in, artifacts, staff):
    url = live_server.url
    page = watch.page
    # A wrong password first: Axes' access attempts and failures have rows.
    watch.visit(f"{url}/admin/login/", "admin sign-in")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errornote")).to_be_visible()
    sign_in(page, staff)
    # (That sign-in cleared the count at this address: a paused member elsewhere.)
    locked = AccessAttempt.objects.create(
        username="alice",
        ip_address="198.51.100.20",
        user_agent="Mozilla/5.0",
        failures_since_start=5,
        attempt_time=timezone.now(),
        get_data="",
        post_data="username=alice",
        http_accept="text/html",
        path_info="/login/",
    )

    pages = _admin_pages(staff, team)
    pages.append(("unlock", reverse("admin:axes_accessattempt_delete", args=[locked.pk])))
    assert len(pages) > 30
    for label, path in pages:
        watch.visit(f"{url}{path}", label)

    # Admin scripts at work: the dashboard's period, the nav filter, a bulk action.
    watch.visit(f"{url}{reverse('admin:jobs_job_dashboard')}", "dashboard")
    page.get_by_role("link", name="Last 7 days").click()
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "true")
    full_page_shot(page, artifacts / "csp-dashboard.png")
    watch.visit(f"{url}{reverse('admin:auth_user_changelist')}", "members (action)")
    page.locator("input.action-select").first.check()
    page.locator("select[name=action]").select_option("grant_or_adjust_credits")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("heading", name="Grant or adjust credits")).to_be_visible()
    watch.visit(f"{url}{reverse('admin:jobs_job_changelist')}", "jobs (filter)")
    page.get_by_role("link", name="Processing").first.click()
    expect(page.locator("#result_list")).to_contain_text(f"{team['live'].pk}")

    # The admin's own JavaScript under the policy: the sidebar's model filter.
    watch.visit(f"{url}{reverse('admin:jobs_rate_changelist')}", "rates (nav filter)")
    nav_filter = page.locator("#nav-filter")
    if nav_filter.count():
        nav_filter.fill("rate")
        expect(page.locator("#nav-sidebar tr.current-model")).to_be_visible()

    assert watch.problems == []
    assert get_user_model().objects.filter(pk=staff.pk).exists()
