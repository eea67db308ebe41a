"""`manage.py check --deploy` with production-like settings reports only what
the README explains (security.W021, HSTS preload, left to the operator), and
S3 storage settings that are missing or half given, by variable."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deploy_check(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        # The test process sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; production does not.
        if key
        not in (
            "DATABASE_URL",
            "REDIS_URL",
            "DEBUG",
            "SECURE_HSTS_PRELOAD",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        )
        and not key.startswith(("AWS_", "STORAGE_"))
    }
    environment.update(
        {
            "DATA_DIR": str(tmp_path),
            "SECRET_KEY": secrets.token_urlsafe(60),
            "PUBLIC_BASE_URL": "https://studio.example.com",
            # The production settings, not the suite's (pytest-django exports those).
            "DJANGO_SETTINGS_MODULE": "lipsync_site.settings",
        }
        | env
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_leave_only_the_hsts_preload_warning(tmp_path):
    result = deploy_check(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "security.W021" in output
    assert "System check identified 1 issue" in output, output


def test_with_preload_decided_the_check_is_silent(tmp_path):
    result = deploy_check(tmp_path, SECURE_HSTS_PRELOAD="1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_plain_http_is_reported(tmp_path):
    """The check is a real one: without https it complains."""
    result = deploy_check(tmp_path, PUBLIC_BASE_URL="http://studio.example.com")
    output = result.stdout + result.stderr
    assert "security.W008" in output or "security.W012" in output, output


S3 = {
    "STORAGE_BACKEND": "s3",
    "AWS_STORAGE_BUCKET_NAME": "studio-media",
    "AWS_S3_ENDPOINT_URL": "https://store.example.com",
    "AWS_ACCESS_KEY_ID": "key",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "SECURE_HSTS_PRELOAD": "1",
}


def test_complete_s3_settings_pass_the_check(tmp_path):
    result = deploy_check(tmp_path, **S3)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_s3_without_a_bucket_stops_the_check_naming_the_variable(tmp_path):
    result = deploy_check(tmp_path, **(S3 | {"AWS_STORAGE_BUCKET_NAME": ""}))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "jobs.E101" in output
    assert "STORAGE_BACKEND is s3 but AWS_STORAGE_BUCKET_NAME is not set" in output


def test_half_a_key_pair_is_named(tmp_path):
    result = deploy_check(tmp_path, **(S3 | {"AWS_SECRET_ACCESS_KEY": ""}))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "jobs.E102" in output and "AWS_SECRET_ACCESS_KEY is not set" in output


def test_a_plain_http_store_behind_an_https_studio_is_warned_of(tmp_path):
    result = deploy_check(tmp_path, **(S3 | {"AWS_S3_ENDPOINT_URL": "http://10.0.0.5:9000"}))
    output = result.stdout + result.stderr
    assert "jobs.W101" in output and "AWS_S3_ENDPOINT_URL is http://" in output, output


def test_an_unknown_storage_backend_stops_the_start_naming_the_variable(tmp_path):
    result = deploy_check(tmp_path, STORAGE_BACKEND="ftp")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "STORAGE_BACKEND must be local or s3, got 'ftp'" in output
