"""Shared fixtures: a team of two members (alice, bob) and one staff member,
test clients signed in as them, a media root of the test's own, and
Chromium settings for the browser tests. Rows are made by tests/factories.py."""

import os
from pathlib import Path

import pytest

from jobs.credits.ledger import credits_grant
from tests.media_factory import make_audio, make_image

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# refuses to run beside one unless told this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The `pipeline` fixture: the studio on a live server wired to the sandbox provider;
# `net` and `serve`: a network that never leaves loopback, for the SSRF guard's tests;
# `media_storage`: each test that asks runs on the local disk and on S3 (moto on loopback).
pytest_plugins = ["tests.pipeline_support", "tests.fetch_support", "tests.storage_support"]

ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery staple"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: the Studio's card stamps live
    there (with Redis), and one left by another test or run for a member of
    the same id would answer "nothing changed" to this test's pages."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_render_times():
    """Learnt render times are memoised per process: each test starts without."""
    from jobs.pipeline.render_times import render_times_forget

    render_times_forget()
    yield
    render_times_forget()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(
        "alice", "alice@example.com", PASSWORD, first_name="Alice"
    )


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(
        "bob", "bob@example.com", PASSWORD, first_name="Bob"
    )


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(
        "sam", "sam@example.com", PASSWORD, first_name="Sam"
    )


@pytest.fixture
def alice_client(client, alice):
    """The test client, signed in as alice (who has no credits)."""
    client.force_login(alice)
    return client


@pytest.fixture
def funded_alice_client(alice_client, alice):
    """alice_client, with 100 studio credits granted to alice."""
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice")
    return alice_client


@pytest.fixture
def staff_client(client, staff):
    """The test client, signed in as the staff member."""
    client.force_login(staff)
    return client


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """Uploads, inputs and outputs go to this test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def dialog_inputs(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """Real media for a dialog job, made once a module: role -> (kind, path);
    the right clip (7 s) is the longer one."""
    d = tmp_path_factory.mktemp("inputs")
    return {
        "image": ("image", make_image(d / "photo.png", 320, 240, fmt="png")),
        "left_audio": ("audio", make_audio(d / "left.mp3", 2.0)),
        "right_audio": ("audio", make_audio(d / "right.mp3", 7.0)),
    }


@pytest.fixture(scope="session")
def eleven_minutes(tmp_path_factory) -> Path:
    """An 11-minute clip: over the ten minutes any mode takes."""
    return make_audio(tmp_path_factory.mktemp("long") / "long.mp3", 660, sample_rate=8000)


# --- Browser tests (pytest-playwright) -------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def sign_in(live_server):
    """sign_in(page, user) signs in through the real login form."""

    def _sign_in(page, user, password: str = PASSWORD):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")

    return _sign_in
