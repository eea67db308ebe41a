"""One HTTP client for every provider, with the submit-exactly-once rules.

`submit()` POSTs once and sorts every failure by one question: could the
provider have started a job? It raises

- ProviderRefused: certainly not (no connection was made, or the provider
  answered 408/429/502/503). Safe to send again later.
- ProviderOutcomeUnknown: maybe (timeout or broken connection after sending,
  500, 504, an answer we cannot read). Never sent again automatically.
- ProviderRejected: the provider said no (other 4xx, an error envelope).

`get()` is for polling: it is safe to repeat, so it retries a little itself
and raises ProviderBusy / ProviderUnavailable / ProviderMalformed /
ProviderRejected for the caller to back off or give up.

How requests reports failures (requests 2.34, urllib3 2.x, checked in their
source): its HTTPAdapter uses urllib3 `Retry(0, read=False)`. A failure while
*opening* the connection (DNS, refused, connect timeout; all subclasses of
urllib3's ConnectTimeoutError) exhausts that Retry and comes back as
`MaxRetryError(reason=...)` inside requests' ConnectionError/ConnectTimeout.
A failure *after* the request started (reset, remote closed, broken pipe)
is a urllib3 ProtocolError re-raised as-is (read=False) and wrapped directly
in requests.ConnectionError; a read timeout becomes requests.ReadTimeout. So
"never sent" is exactly "a MaxRetryError whose reason is a connect error".

The API key only ever goes into the Authorization header of each request
(not the session, which a caller may share); provider text that reaches an
exception message is passed through `redact()`.
"""

from __future__ import annotations

import json as jsonlib
import logging
import math
import os
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.util.retry import Retry

log = logging.getLogger("jobs.providers")

USER_AGENT = "LipsyncStudio/0.1"
MAX_BODY_BYTES = 1024 * 1024  # provider answers are small JSON documents
MAX_MESSAGE_CHARS = 300  # provider text shown on a job card

# Statuses that say "nothing was started, come back later". 408: the server
# gave up waiting for our request before it was complete.
REFUSED_STATUSES = frozenset({408, 429, 502, 503})
# Statuses a poll repeats by itself before giving up (GET is safe to repeat).
GET_RETRY_STATUSES = frozenset({500, 502, 503, 504})

NOT_SENT_AGAIN = "the job may or may not have been created, so it was not sent again."


# --- Exceptions ---------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every provider failure; str() is safe to show a member."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderRefused(ProviderError):
    """Submit: the provider certainly did not start a job; retrying is safe.

    The message is a short phrase ("connection refused"), meant to be put
    inside a longer sentence by the caller."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderOutcomeUnknown(ProviderError):
    """Submit: the request may have started a job; it must not be sent again."""


class ProviderRejected(ProviderError):
    """The provider plainly said no; the message is the provider's own words
    (or "HTTP 404 Not Found" when it gave none). Not worth retrying."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderUnavailable(ProviderError):
    """Poll: the provider could not be reached or failed; ask again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderBusy(ProviderUnavailable):
    """Poll: the provider answered 429; wait at least `retry_after`."""


class ProviderMalformed(ProviderError):
    """Poll: the provider answered something outside its contract."""


# --- Helpers --------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def submit_error_for_status(
    status: int, message: str, *, retry_after: float | None = None
) -> ProviderError:
    """The submit rules for a non-success status, whether it came as the HTTP
    status or as a status code inside a provider's JSON envelope."""
    if status in REFUSED_STATUSES:
        reason = "receiving too many requests" if status == 429 else "temporarily unavailable"
        return ProviderRefused(f"the provider is {reason}, HTTP {status}", retry_after)
    if 400 <= status < 500:
        return ProviderRejected(message, status)
    if status == 504:
        return ProviderOutcomeUnknown(
            f"The provider's gateway timed out (HTTP 504); {NOT_SENT_AGAIN}"
        )
    if 500 <= status < 600:
        return ProviderOutcomeUnknown(
            f"The provider reported an error (HTTP {status}); {NOT_SENT_AGAIN}"
        )
    # Anything else (a redirect, a made-up code): we cannot tell what happened.
    return ProviderOutcomeUnknown(
        f"The provider answered with an unexpected status ({status}); {NOT_SENT_AGAIN}"
    )


def poll_error_for_status(
    status: int, message: str, *, retry_after: float | None = None
) -> ProviderError:
    """The poll rules for a non-success status (HTTP or envelope)."""
    if status == 429:
        return ProviderBusy("the provider is busy, HTTP 429", retry_after)
    if status == 408 or 500 <= status < 600:
        return ProviderUnavailable(f"the provider is unavailable, HTTP {status}", retry_after)
    if 400 <= status < 500:
        return ProviderRejected(message, status)
    return ProviderMalformed(f"the provider answered with an unexpected status ({status})")


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """exc and what it explicitly wraps: requests puts urllib3's error in
    args[0]; MaxRetryError has .reason; urllib3's ProxyError .original_error."""
    seen: set[int] = set()
    current: Any = exc
    while isinstance(current, BaseException) and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, MaxRetryError):
            current = current.reason
        elif isinstance(current, Urllib3ProxyError):
            current = current.original_error
        else:
            current = current.args[0] if current.args else None


def _never_sent(exc: requests.RequestException, connect_timeout: float) -> str | None:
    """Why the request certainly never left, or None if it may have."""
    inner = list(_wrapped(exc))
    # Connect errors only count when urllib3 gave up *connecting* (MaxRetryError);
    # see the module docstring.
    if not any(isinstance(e, MaxRetryError) for e in inner):
        return None
    for err in inner:
        if isinstance(err, NameResolutionError):
            return "the provider's address could not be resolved"
        if isinstance(err, NewConnectionError):
            return "could not connect to the provider: connection refused or no route"
        if isinstance(err, ConnectTimeoutError):
            return f"the provider did not accept a connection within {connect_timeout:g} s"
        # Certificate checks happen in the TLS handshake, before any request byte.
        if isinstance(err, ssl.SSLCertVerificationError):
            return "the provider's TLS certificate could not be verified"
    return None


def _message_from(body: bytes | None, response: requests.Response) -> str:
    """The provider's own words from an error answer, if it gave any."""
    data = _parse_json(body) if body else None
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "msg"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return value
    content_type = response.headers.get("Content-Type", "")
    if body and content_type.startswith("text/plain") and len(body) <= MAX_MESSAGE_CHARS:
        text = body.decode("utf-8", "replace").strip()
        if text:
            return text
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {response.status_code} {phrase}".strip()


def _parse_json(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return jsonlib.loads(body)
    except (ValueError, RecursionError):  # bad JSON or encoding; absurd nesting
        return None


# --- The client -----------------------------------------------------------------------


def _session_for(base_url: str) -> requests.Session:
    """A session for one provider that reads the environment's proxy and CA
    settings once, here, instead of on every request: requests re-reads them
    (and the no_proxy rules) per call, about a millisecond each, which was a
    third of the poll loop's work per status request with thousands of jobs
    in flight. (It also keeps a ~/.netrc from replacing our Authorization.)"""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    return session


class ProviderHttp:
    """HTTP to one provider account: one keep-alive session, the key in the
    Authorization header only, submit-once POSTs and patient GETs."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        get_attempts: int = 3,
        get_backoff: float = 0.5,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("The provider base URL must be an http(s) URL with a host.")
        if parts.username or parts.password:
            raise ValueError("The provider base URL must not contain credentials.")
        # requests would echo a bad header value (the key) in its error message.
        if not api_key or any(ch.isspace() or not ch.isprintable() for ch in api_key):
            raise ValueError(
                "The provider API key is empty or contains spaces or control characters."
            )
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._where = parts.netloc
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.get_attempts = max(1, get_attempts)
        self.get_backoff = get_backoff
        self._owns_session = session is None
        self.session = session or _session_for(self.base_url)
        # Whatever session we were given, requests to this provider go through
        # an adapter that never repeats a request (requests' own default,
        # pinned here in case a shared session was mounted with retries).
        self.session.mount(self.base_url + "/", HTTPAdapter(max_retries=Retry(0, read=False)))

    def __repr__(self) -> str:
        return f"<ProviderHttp {self.base_url}>"

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> ProviderHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """Provider text made fit for a job card: no key, no control
        characters, not too long."""
        text = text.replace(self._api_key, "[redacted]")
        text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 1].rstrip() + "…"
        return text

    # -- submit -------------------------------------------------------------

    def submit(self, path: str, json: dict[str, Any]) -> dict[str, Any]:
        """POST once; the decoded JSON object, or a classified ProviderError."""
        started = time.monotonic()
        try:
            response = self.session.post(
                self._url(path),
                json=json,
                headers=self._headers(),
                stream=True,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,  # a redirected POST could be sent twice
            )
        except requests.RequestException as exc:
            error = self._submit_error_for_exception(exc)
            self._log_failure("POST", path, started, error, exc)
            raise error from exc
        with response:
            body = self._read_body(response)
        status = response.status_code
        if 200 <= status < 300:
            data = _parse_json(body)
            if not isinstance(data, dict):
                error = ProviderOutcomeUnknown(
                    f"The provider's answer could not be read; {NOT_SENT_AGAIN}"
                )
                self._log_failure("POST", path, started, error)
                raise error
            log.info(
                "POST %s%s -> %s in %.2f s", self._where, path, status, time.monotonic() - started
            )
            return data
        error = submit_error_for_status(
            status,
            self.redact(_message_from(body, response)),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
        self._log_failure("POST", path, started, error)
        raise error

    def _submit_error_for_exception(self, exc: requests.RequestException) -> ProviderError:
        reason = _never_sent(exc, self.connect_timeout)
        if reason:
            return ProviderRefused(reason)
        if isinstance(exc, requests.ReadTimeout):
            return ProviderOutcomeUnknown(
                f"The provider did not answer within {self.read_timeout:g} s; {NOT_SENT_AGAIN}"
            )
        if isinstance(exc, requests.ConnectionError):
            return ProviderOutcomeUnknown(
                f"The connection to the provider broke before it answered; {NOT_SENT_AGAIN}"
            )
        return ProviderOutcomeUnknown(
            f"The request to the provider failed before it answered; {NOT_SENT_AGAIN}"
        )

    # -- get ----------------------------------------------------------------

    def get(self, path: str) -> dict[str, Any]:
        """GET with a few quick retries; the decoded JSON object, or raises
        ProviderBusy, ProviderUnavailable, ProviderMalformed, ProviderRejected."""
        started = time.monotonic()
        for attempt in range(1, self.get_attempts + 1):
            outcome, retry_now = self._get_once(path)
            if isinstance(outcome, dict):
                log.debug(
                    "GET %s%s -> 2xx in %.2f s", self._where, path, time.monotonic() - started
                )
                return outcome
            retry_after = getattr(outcome, "retry_after", None)
            # Repeat at once only if the provider did not ask for more patience.
            if (
                not retry_now
                or attempt == self.get_attempts
                or (retry_after is not None and retry_after > self._pause(attempt))
            ):
                break
            time.sleep(self._pause(attempt))
        self._log_failure("GET", path, started, outcome)
        raise outcome

    def _pause(self, attempt: int) -> float:
        return self.get_backoff * 2 ** (attempt - 1)

    def _get_once(self, path: str) -> tuple[dict[str, Any] | ProviderError, bool]:
        """One GET: the JSON object or the failure, and whether to repeat it now."""
        try:
            response = self.session.get(
                self._url(path),
                headers=self._headers(),
                stream=True,
                timeout=(self.connect_timeout, self.read_timeout),
            )
        except requests.ReadTimeout:
            # Not repeated here: it already cost a full read timeout.
            return ProviderUnavailable(
                f"the provider did not answer within {self.read_timeout:g} s"
            ), False
        except requests.RequestException:
            return ProviderUnavailable("the provider could not be reached"), True
        with response:
            body = self._read_body(response)
        status = response.status_code
        if 200 <= status < 300:
            if body is None:
                return ProviderUnavailable("the provider's answer was cut off"), True
            data = _parse_json(body)
            if not isinstance(data, dict):
                return ProviderMalformed("the provider's answer was not the expected JSON"), False
            return data, False
        error = poll_error_for_status(
            status,
            self.redact(_message_from(body, response)),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
        return error, status in GET_RETRY_STATUSES

    # -- shared -------------------------------------------------------------

    def _url(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("A provider path starts with '/'.")
        return self.base_url + path

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def _read_body(self, response: requests.Response) -> bytes | None:
        """The body, or None if it broke off, dragged on or was too large."""
        deadline = time.monotonic() + self.read_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY_BYTES or time.monotonic() > deadline:
                    return None
                chunks.append(chunk)
        except requests.RequestException as exc:
            log.debug("reading the answer from %s failed: %s", self._where, type(exc).__name__)
            return None
        return b"".join(chunks)

    def _log_failure(
        self,
        method: str,
        path: str,
        started: float,
        error: ProviderError,
        exc: BaseException | None = None,
    ) -> None:
        # Only our own message and the exception's type: never headers, never
        # requests' text (it holds no key today, but needs not stay that way).
        cause = f" ({type(exc).__name__})" if exc is not None else ""
        log.warning(
            "%s %s%s failed after %.2f s: %s: %s%s",
            method,
            self._where,
            path,
            time.monotonic() - started,
            type(error).__name__,
            error,
            cause,
        )
