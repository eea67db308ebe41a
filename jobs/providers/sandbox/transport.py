"""The sandbox's outgoing HTTP, as a real provider does it: fetching inputs by
URL and POSTing webhooks. URLs are never logged or put in messages (the
studio's are signed)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import requests

log = logging.getLogger("jobs.providers.sandbox")

USER_AGENT = "LipsyncSandbox/1.0"
CHUNK = 64 * 1024
MAX_REDIRECTS = 3


class FetchError(Exception):
    """str() is the task's error message."""


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy settings from the environment: inputs are local
    session.max_redirects = MAX_REDIRECTS
    session.headers["User-Agent"] = USER_AGENT
    return session


def fetch(
    session: requests.Session,
    url: str,
    dest: Path,
    *,
    label: str,
    max_bytes: int,
    timeout: float,
) -> int:
    """Stream url into dest; returns its size. `label` names the field in messages."""
    try:
        with session.get(url, stream=True, timeout=(min(timeout, 10.0), timeout)) as response:
            if response.status_code != 200:
                raise FetchError(f"Could not fetch {label}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"Could not fetch {label}: larger than {_mb(max_bytes)}")
            size = 0
            with open(dest, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"Could not fetch {label}: larger than {_mb(max_bytes)}")
                    out.write(chunk)
    except requests.Timeout:
        raise FetchError(f"Could not fetch {label}: timed out") from None
    except requests.TooManyRedirects:
        raise FetchError(f"Could not fetch {label}: too many redirects") from None
    except requests.RequestException:
        raise FetchError(f"Could not fetch {label}: connection failed") from None
    if size == 0:
        raise FetchError(f"Could not fetch {label}: the file is empty")
    return size


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def post_webhook(url: str, body: bytes, *, timeout: float) -> int | str:
    """POST body once; never follows a redirect. Returns the HTTP status, or
    a short error name when there was none."""
    try:
        with new_session() as session:
            response = session.post(
                url,
                data=body,
                timeout=timeout,
                allow_redirects=False,
                headers={"Content-Type": "application/json"},
            )
            response.close()
            return response.status_code
    except requests.Timeout:
        result = "timeout"
    except requests.RequestException as exc:
        result = type(exc).__name__
    log.info("webhook to %s failed: %s", urlsplit(url).hostname, result)
    return result
