"""The integration suite's set-up: the studio's real processes (bench/processes.py:
the sandbox, gunicorn and `manage.py qcluster` nodes, with Q_SYNC off) against
pytest's test database, on whatever broker the environment gives (the ORM
broker on SQLite, Redis with REDIS_URL), and a member with an API key.

Rows the processes must see are committed (transactional tests). The test
database is flushed after each test, the migrations' rows included: rates
are put back, and each test starts with NO django-q schedule, so that what
a test sees run was started by the code under test; `schedules_restore()`
puts the migrations' schedules back when a test wants them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django_q.brokers import get_broker
from django_q.models import Schedule

from bench.processes import SANDBOX_API_KEY, Studio, manage, studio_env
from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.models import Pool
from tests.media_factory import make_audio, make_image, make_video
from tests.pipeline_support import _seed_rates

pytestmark = pytest.mark.integration

GRANT = 2000

# The migrations that create the schedules, and their functions.
SCHEDULE_MIGRATIONS = [
    ("0003_schedules", "create"),
    ("0007_retention_schedule", "create"),
    ("0016_webhook_deliveries", "schedule_create"),
]


def schedules_restore() -> list[Schedule]:
    """The schedules the migrations make, due now."""
    for module, func in SCHEDULE_MIGRATIONS:
        getattr(importlib.import_module(f"jobs.migrations.{module}"), func)(django_apps, None)
    return list(Schedule.objects.all())


def database_env() -> dict[str, str]:
    """Where the children find the test database: PostgreSQL's test database
    by URL, or SQLite's test file by path."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return {"database_url": f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"}
    return {"sqlite_path": Path(db["NAME"]).resolve()}


@pytest.fixture(scope="session")
def integration_data_dir(tmp_path_factory) -> Path:
    """One DATA_DIR for the session's processes, static files collected once
    (gunicorn serves them through WhiteNoise's manifest, as in production)."""
    data_dir = tmp_path_factory.mktemp("integration-data")
    env = studio_env(data_dir=data_dir, secret_key=django_settings.SECRET_KEY)
    manage(env, "collectstatic", "--no-input", "-v", "0")
    return data_dir


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Real inputs for every mode, made once."""
    d = tmp_path_factory.mktemp("integration-media")
    files = {
        "photo.png": make_image(d / "photo.png", 640, 480, fmt="png"),
        "left.mp3": make_audio(d / "left.mp3", 1.5),
        "right.wav": make_audio(d / "right.wav", 2.0, fmt="wav", tone_hz=330),
        "clip.mp4": d / "clip.mp4",
    }
    make_video(files["clip.mp4"], 2.0, 640, 360, 15)
    return files


@dataclass
class Member:
    user: object
    raw_key: str
    key: object
    base_url: str = ""

    def api(self) -> requests.Session:
        http = requests.Session()
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {self.raw_key}"
        return http

    def browser(self) -> requests.Session:
        """Signed in (a session made with the test client: the same database
        and SECRET_KEY), with the CSRF token the Studio form needs."""
        client = Client()
        client.force_login(self.user)
        http = requests.Session()
        http.trust_env = False
        for name, morsel in client.cookies.items():
            http.cookies.set(name, morsel.value)
        page = http.get(f"{self.base_url}/", timeout=30)
        page.raise_for_status()
        token = http.cookies.get("csrftoken") or re.search(
            r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text
        ).group(1)
        http.headers["X-CSRFToken"] = token
        http.headers["Referer"] = f"{self.base_url}/"
        return http


@pytest.fixture
def member(transactional_db, django_user_model) -> Member:
    """A member with GRANT API and studio credits and an API key."""
    user = django_user_model.objects.create_user("ada", "ada@example.com", "x" * 20)
    credits_grant(user=user, pool=Pool.API, amount=GRANT, key="grant:ada:api")
    credits_grant(user=user, pool=Pool.STUDIO, amount=GRANT, key="grant:ada:studio")
    key, raw = api_key_create(owner=user, name="integration")
    return Member(user=user, raw_key=raw, key=key)


@pytest.fixture
def make_studio(
    transactional_db, settings, tmp_path, integration_data_dir, member
) -> Callable[..., Studio]:
    """make_studio(**env) -> a Studio (nothing started yet) on the test
    database and this test's media folder, with `env` on top of the shared
    environment. Every process is stopped at the end of the test, before the
    database is flushed."""
    _seed_rates()
    Schedule.objects.all().delete()
    media_root = tmp_path / "media"
    settings.MEDIA_ROOT = media_root  # the test reads what the processes archived
    settings.FETCH_ALLOW_LOOPBACK = True
    redis_url = settings.REDIS_URL or None
    if redis_url:
        get_broker().purge_queue()  # nothing left over from an earlier run
    made: list[Studio] = []

    def make(**env: str) -> Studio:
        base = studio_env(
            data_dir=integration_data_dir,
            secret_key=settings.SECRET_KEY,
            redis_url=redis_url,
            media_root=media_root,
            API_RATE_LIMIT_PER_MINUTE="10000",
            # Short provider timeouts, so a killed peer costs seconds.
            PROVIDER_CONNECT_TIMEOUT="2",
            PROVIDER_READ_TIMEOUT="10",
            **database_env(),
        )
        studio = Studio({**base, **env}, log_dir=tmp_path / f"logs-{len(made)}")
        member.base_url = studio.web_url
        made.append(studio)
        return studio

    try:
        yield make
    finally:
        for studio in made:
            studio.stop_all()


def sandbox_stats(studio: Studio) -> dict:
    """What the sandbox process counted: submissions by path, tasks by status."""
    answer = requests.get(
        f"{studio.sandbox_url}/_sandbox/stats",
        headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def submit_api(member: Member, route: str, files: dict[str, Path], **fields) -> str:
    """POST a job to the API as multipart; its id (the job's uuid)."""
    handles = {name: open(path, "rb") for name, path in files.items()}
    try:
        answer = member.api().post(
            f"{member.base_url}{route}",
            files={name: (Path(h.name).name, h) for name, h in handles.items()},
            data={k: str(v) for k, v in fields.items()},
            timeout=60,
        )
    finally:
        for h in handles.values():
            h.close()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["data"]["task_id"] if "data" in body else body["id"]
