"""The pages' JavaScript, ES modules from static/js/ with no build step, in
real Chromium under the Content-Security-Policy: each page loads the modules
it needs and no others, none breaks the policy or logs an error, and each
does its work there (bars and countdowns tick, copy buttons show). A request
that gets no answer to show is told on the field or frees the form; files
travel only with their own upload. The progress formula the server draws a
card with (progress_at) is the one the page ticks it with (progressAt).

Screenshots go to tests/artifacts/ (js-*.png)."""

import random
import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from jobs.accounts.api_keys import api_key_create
from jobs.models import Job
from jobs.studio.cards import progress_at, short_duration
from jobs.studio.forms import ALL_ROLES
from tests.browser_support import full_page_shot
from tests.pipeline_support import run_until_terminal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BASE = {"ui/notices.js", "ui/menu.js", "ui/forms.js", "ui/requests.js"}
PAGES = {
    "sign-in": BASE,
    "studio": BASE
    | {"studio/uploads.js", "studio/progress.js", "studio/poller.js", "studio/notify.js"}
    | {"ui/countdowns.js"},
    "gallery": BASE | {"gallery/videos.js", "ui/countdowns.js"},
    "gallery item": BASE | {"ui/countdowns.js"},
    "credits": BASE,
    "API keys": BASE | {"ui/copy.js"},
}

# Runs before any script of every page: a CSP violation becomes a console error.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


class Watch:
    """The modules each page fetched, and its console errors, CSP violations
    and uncaught exceptions."""

    def __init__(self, page):
        self.page = page
        self.where = "start"
        self.problems: list[str] = []
        self.modules: set[str] = set()
        page.add_init_script(REPORT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"{self.where}: {error}"))
        page.on("response", self._response)
        # Routed requests skip the browser's cache: each page fetches what it loads.
        page.route("**/static/js/**", lambda route: route.continue_())

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"{self.where}: {message.text}")

    def _response(self, response):
        found = re.search(r"/static/js/(.+\.js)$", response.url)
        if found:
            assert response.status == 200, response.url
            self.modules.add(found.group(1))

    def visit(self, url: str, label: str) -> set[str]:
        self.where = label
        self.modules = set()
        response = self.page.goto(url, wait_until="networkidle")
        assert response.status == 200, f"{url} answered {response.status}"
        assert "script-src 'self'" in response.headers.get("content-security-policy", "")
        return self.modules


@pytest.fixture
def watch(page):
    page.set_viewport_size({"width": 1360, "height": 1000})
    return Watch(page)


@pytest.fixture
def jobs(pipeline, alice):
    """A completed job (shared, with its deletion countdowns) and one
    rendering at the provider for ever (its bar ticks)."""
    done = run_until_terminal(pipeline.create_dialog(left=1.0, right=1.2, prompt="hello there"))
    assert done.state == "completed"
    pipeline.sandbox.faults.update({"never_finish": 1})
    live = pipeline.create_dialog(left=1.0, right=1.0)
    assert Job.objects.get(pk=live.pk).state == "processing"
    return {"done": done, "live": live}


def test_each_page_loads_its_own_modules_and_they_work(
    jobs, watch, live_server, sign_in, alice, artifacts
):
    url = live_server.url
    page = watch.page
    assert watch.visit(f"{url}/login/", "sign-in") == PAGES["sign-in"]
    sign_in(page, alice)

    assert watch.visit(f"{url}/", "studio") == PAGES["studio"]
    live = page.locator(f"#job-{jobs['live'].pk}")
    bar = live.locator(".progress")
    # progress.js draws the bar (no style attribute under the policy) and ticks its label.
    assert bar.locator("span").evaluate("s => s.getBoundingClientRect().width") > 0
    expect(live.locator("[data-progress-label]")).to_have_text(
        re.compile(r"^Rendering · (about \d+ (s|min( \d\d s)?) left|taking longer than expected…)$")
    )
    # countdowns.js replaces the server's "6 days, 23 hours" with a clock that ticks.
    clock = page.locator(f"#job-{jobs['done'].pk} [data-countdown]").first
    expect(clock).to_have_text(re.compile(r"^\d+ d \d\d:\d\d:\d\d$"))
    first = clock.text_content()
    expect(clock).not_to_have_text(first, timeout=3_000)
    # poller.js: a job is live, so the poller keeps asking (its cursor moves
    # only when something changed: "nothing changed" keeps it, see cards.py).
    poller = page.locator("#cards-poller")
    with page.expect_response(lambda r: "/studio/cards/" in r.url and r.ok, timeout=6_000):
        pass
    expect(poller).to_have_attribute("data-polling", "1")
    full_page_shot(page, artifacts / "js-studio.png")

    assert watch.visit(f"{url}/gallery/", "gallery") == PAGES["gallery"]
    expect(page.locator(".gallery-item [data-countdown]").first).to_have_text(
        re.compile(r"^\d+ d \d\d:\d\d:\d\d$")
    )
    page.locator("[data-gallery-play]").first.click()  # videos.js plays it in place
    expect(page.locator("[data-gallery-media].is-playing video")).to_have_count(1)

    assert watch.visit(f"{url}/gallery/{jobs['done'].pk}/", "gallery item") == PAGES["gallery item"]
    assert watch.visit(f"{url}/credits/", "credits") == PAGES["credits"]

    api_key_create(owner=alice, name="nightly script")
    assert watch.visit(f"{url}/api-keys/", "API keys") == PAGES["API keys"]
    watch.where = "API keys (new)"
    page.get_by_label("Name (optional)").fill("second script")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()  # copy.js shows it

    # menu.js: the user menu closes on Escape, back on its summary.
    page.locator("details.user-menu summary").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()

    assert watch.problems == []


def test_an_upload_that_gets_no_answer_says_so_and_files_go_only_with_their_own_upload(
    pipeline, watch, live_server, sign_in, alice
):
    page = watch.page
    sign_in(page, alice)
    page.route("**/studio/uploads/image/**", lambda route: route.abort("connectionreset"))

    photo = page.get_by_label("Photo", exact=True)
    photo.set_input_files(pipeline.photo())

    field = page.locator("#field-image")
    expect(field.locator(".field-help")).to_have_text(
        "The upload did not finish. Check your connection and choose the file again."
    )
    expect(field).not_to_have_class(re.compile("is-uploading"))
    submit = page.get_by_role("button", name="Start the job")
    expect(submit).not_to_have_attribute("aria-disabled", "true")
    # The photo is still chosen: what follows would carry it, but must not.
    assert photo.evaluate("input => input.files.length") == 1

    with page.expect_request("**/studio/uploads/left_audio/**") as sent:
        page.get_by_label("Left speaker's audio", exact=True).set_input_files(pipeline.audio(1.0))
    body = sent.value.post_data_buffer
    assert b'name="left_audio"; filename=' in body
    assert b"filename=" not in body.replace(b'name="left_audio"; filename=', b"")
    expect(page.locator("#field-left_audio .staged")).to_be_visible()

    with page.expect_request("**/studio/provider/") as sent:
        page.get_by_label("Provider").select_option("joypix")
    fields = parse_qs(sent.value.post_data_buffer.decode())
    assert fields["provider"] == ["joypix"] and fields["left_audio_upload"]
    assert "image" not in fields

    with page.expect_request(re.compile(r"/studio/form/\?")) as sent:
        page.get_by_role("link", name="Talking photo").click()
    asked = sent.value.url
    assert "provider=joypix" in asked and "left_audio_upload=" in asked
    assert "image=" not in asked and "form_token" not in asked


def test_a_job_form_that_gets_no_answer_may_be_sent_again(
    pipeline, watch, live_server, sign_in, alice
):
    page = watch.page
    sign_in(page, alice)
    page.route("**/studio/uploads/image/**", lambda route: route.abort("connectionreset"))
    photo = page.get_by_label("Photo", exact=True)
    photo.set_input_files(pipeline.photo())
    expect(page.locator("#field-image .field-help")).to_contain_text("did not finish")
    assert photo.evaluate("input => input.files.length") == 1
    tries = []

    def fail(route):
        tries.append(route.request.post_data_buffer)
        route.fulfill(status=502, body="Bad gateway")

    page.route("**/studio/jobs/", fail)
    submit = page.get_by_role("button", name="Start the job")
    with page.expect_response(lambda r: r.status == 502):
        submit.click()
    expect(submit).not_to_have_attribute("aria-disabled", "true")
    with page.expect_response(lambda r: r.status == 502):
        submit.click()
    assert len(tries) == 2
    assert all(b'name="form_token"' in body for body in tries)
    assert all(b"filename=" not in body for body in tries)


def test_the_page_ticks_progress_with_the_servers_formula(live_server, page, sign_in, alice):
    """progress_at (the card as drawn) and progressAt (as it ticks) agree over
    many runs, on both sides of each rounding edge: whole percents, a half
    second left (Python's round() goes to even, JavaScript's up), the end."""
    sign_in(page, alice)
    rng = random.Random(20261203)
    cases = []
    for expected in (0, 1, 999, 1_000, 85_000, 2_500, 59_500, 600_000, 3_600_000):
        for elapsed in (-5_000, -1, 0, 1, expected // 2, expected - 1, expected, expected + 1):
            cases.append((1_700_000_000_000, expected, 1_700_000_000_000 + elapsed))
    for left_ms in (500, 1_500, 2_500, 59_499, 59_500, 60_500, 599_500, 600_499, 600_500):
        cases.append((1_700_000_000_000, 900_000, 1_700_000_000_000 + 900_000 - left_ms))
    for _ in range(3_000):
        start = rng.randrange(1_600_000_000_000, 1_800_000_000_000)
        expected = rng.choice([rng.randrange(1, 20_000), rng.randrange(1, 4_000_000)])
        cases.append((start, expected, start + rng.randrange(-10_000, expected + 120_000)))
    seconds = [0, 0.49999999999999994, 0.5, 1.5, 2.5, 2.4999, 59.49, 59.5, 599.5, 600.5, 7200.5]
    seconds += [rng.uniform(0, 4_000) for _ in range(1_000)]

    page.goto(f"{live_server.url}/")
    in_page = page.evaluate(
        """async ([cases, seconds]) => {
             const m = await import("/static/js/studio/progress.js");
             return {
               progress: cases.map(([s, e, n]) => {
                 const p = m.progressAt(s, e, n);
                 return [p.percent, p.label];
               }),
               short: seconds.map(m.short),
             };
           }""",
        [cases, seconds],
    )

    server = [list(progress_at(start_ms=s, expected_ms=e, now_ms=n)) for s, e, n in cases]
    assert in_page["progress"] == server
    assert in_page["short"] == [short_duration(x) for x in seconds]
    # The edges are there: a half second left rounds up, and the bar ends at 90 %.
    assert ["Rendering · about 3 s left"] == [
        label for (s, e, n), (_p, label) in zip(cases, server, strict=True) if s + e - n == 2_500
    ][:1]
    assert {percent for percent, _label in server} >= {5, 89, 90}


# --- The modules as files -------------------------------------------------------

JS = Path(__file__).resolve().parents[2] / "static" / "js"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ERROR_EVENTS = ("responseError", "sendError", "swapError", "targetError", "timeout", "onLoadError")


def test_the_modules_import_nothing_and_leave_htmx_errors_alone():
    """In production each module has a hashed name: one importing another by
    its plain name would load a second copy, its listeners twice. No module
    listens to htmx's error events or flips an answer in beforeSwap (htmx's
    responseHandling decides what swaps), and one listens to afterRequest."""
    modules = sorted(JS.rglob("*.js"))
    assert {str(p.relative_to(JS)) for p in modules} >= set().union(*PAGES.values())
    after_request = []
    for path in modules:
        text = path.read_text()
        assert not re.search(r"^\s*import\b|\bimport\s*\(", text, re.M), path
        for event in (*ERROR_EVENTS, "beforeSwap"):
            assert f"htmx:{event}" not in text, (path, event)
        after_request += [path.name] * text.count("htmx:afterRequest")
    assert after_request == ["requests.js"]


def test_every_module_a_template_names_exists():
    named = set()
    for template in TEMPLATES.rglob("*.html"):
        named |= set(
            re.findall(
                r"""<script type="module" src="\{% static 'js/([^']+)' %\}">""",
                template.read_text(),
            )
        )
    assert named == set().union(*PAGES.values())
    assert all((JS / name).is_file() for name in named)


def test_no_hx_params_names_a_file_role(client, alice):
    """Files are left out of the form's requests by studio/uploads.js, not by
    lists of the roles in hx-params."""
    client.force_login(alice)
    for mode in ("dialog", "talking_photo", "video_dub"):
        page = client.get(f"/?mode={mode}").content.decode()
        params = re.findall(r'hx-params="([^"]*)"', page)
        assert params, mode  # the mode links and the file inputs still say what they leave out
        for value in params:
            names = {name.strip() for name in value.removeprefix("not ").split(",")}
            assert not names & (set(ALL_ROLES) | {f"{role}_upload" for role in ALL_ROLES}), value
