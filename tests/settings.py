"""Settings for the test suite: the studio's own (lipsync_site.settings, read
from the environment as in production) plus what only tests want. pyproject's
[tool.pytest.ini_options] points pytest-django here.

pytest-django exports DJANGO_SETTINGS_MODULE, so a manage.py process a test
starts inherits these settings unless the test sets lipsync_site.settings.
"""

from lipsync_site.settings import *  # noqa: F403
from lipsync_site.settings import DATA_DIR, DATABASES, Q_CLUSTER, STORAGES

# Tasks run inline in the caller's thread: job_create's on-commit submit runs
# in the test, and kick_poller() does nothing, so tests drive the poll loop.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}

# Static files are served by the finders: no collectstatic, no manifest.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so tests with several connections or threads see
    # one database, as the real processes do.
    DATABASES["default"]["TEST"] = {"NAME": DATA_DIR / "test-db.sqlite3"}
