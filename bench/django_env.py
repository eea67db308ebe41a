"""The benches' Django: the environment the settings read, pointed at a fresh
data directory, then setup, migrate and collectstatic.

Imports only the standard library until `django_start` runs (the settings
read the environment once, when Django is set up).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# Set in a developer's shell, these would point a bench at their own data.
CLEARED = ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "TESTING", "DEBUG")


def django_start(*, data_dir: Path, database_url: str | None = None, **environ: str) -> float:
    """Configure the studio on `data_dir` (SQLite there unless `database_url`),
    with `environ` on top, set Django up, migrate and collect static files.
    Returns the seconds migrate took."""
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "lipsync_site.settings",
            "DATA_DIR": str(data_dir),
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            # No provider account: every provider goes to the sandbox, as on a
            # fresh install.
            "JOYPIX_BASE_URL": "",
            "JOYPIX_API_KEY": "",
            "LIPSYNC_STUDIO_BASE_URL": "",
            "LIPSYNC_STUDIO_API_KEY": "",
            **environ,
        }
    )
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django
    from django.core.management import call_command

    django.setup()
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    took = time.perf_counter() - started
    call_command("collectstatic", interactive=False, verbosity=0)
    return took
