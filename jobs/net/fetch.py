"""One guard for every URL the studio fetches on someone else's word: a
provider's output link today, inputs given by URL and members' webhook
addresses later.

Built on Saleor's requests-hardened (read in its 1.3 source): its adapter
resolves the host once, refuses the address unless it is public, and then
connects to that very address (the pool is keyed by the IP, the Host header
and the TLS name stay the original host), so DNS cannot change the answer
between the check and the connection. Its session never follows redirects.
On top of it, this module adds:

- a stricter address rule (`address_problem`): the library misses IPv4-
  compatible IPv6 (`::127.0.0.1`, reserved) and site-local `fec0::/10`;
- no proxy or .netrc from the environment (a proxy would resolve the host
  itself, after our check);
- redirects followed by `url_download` only when asked, one hop at a time,
  each hop checked again as a new address, with a hop cap;
- FETCH_ALLOW_LOOPBACK (off by default; the run command turns it on when it
  starts the sandbox): loopback is allowed for the address as given, never
  for a redirect, and other private ranges never;
- size and total-time caps on the body, and messages fit for a member
  (UnsafeUrl, FetchFailed) that never repeat the URL, whose query may be a
  provider's signature. The log names the host and the refused address.

Time: each read of the body waits for what has arrived (read1), so the total
cap holds within one read timeout even against a server that drips bytes.
Connecting and the response headers are bounded per socket operation only;
the task's own timeout (Q_TIMEOUT) is the last bound there.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from django.conf import settings
from requests.utils import requote_uri
from requests_hardened import Config, Manager
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES, InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

log = logging.getLogger("jobs.net.fetch")

USER_AGENT = "LipsyncStudio/0.1"
SCHEMES = ("http", "https")
CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What is wrong with an address, in words for the member who gave the URL.
LOOPBACK = "a loopback address (this server itself)"
PRIVATE = "a private network address"
LINK_LOCAL = "a link-local address (such as a cloud metadata service)"
NOT_PUBLIC = "an address that is not on the public internet"

_PRIVATE_NETS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT: often routes to internal workloads
        "fc00::/7",  # unique local
        "fec0::/10",  # site-local (deprecated, still routable on some networks)
    )
)


class FetchError(Exception):
    """A fetch that did not happen or did not finish; str() is a sentence fit
    for a member, without the URL."""


class UnsafeUrl(FetchError):
    """Refused by the guard: scheme, address or redirect. Asking again gives
    the same answer, so callers fail rather than retry."""


class FetchFailed(FetchError):
    """The fetch was allowed but failed (network, HTTP status, size, time);
    it may work later."""


def allow_loopback_default() -> bool:
    return bool(getattr(settings, "FETCH_ALLOW_LOOPBACK", False))


def address_problem(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the studio must not connect to `ip`, or None if it is public."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    if ip.is_loopback:
        return None if allow_loopback else LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if any(ip in net for net in _PRIVATE_NETS):
        return PRIVATE
    if (
        not ip.is_global
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved  # with ::a.b.c.d, which the library lets through
        or ip.is_unspecified
        or any(ip in net for net in EXTRA_BLOCKED_NET_RANGES)  # NAT64, 6to4 relays...
    ):
        return NOT_PUBLIC
    return None


def _refused(problem: str, *, redirected: bool = False) -> UnsafeUrl:
    verb = "redirects to" if redirected else "resolves to"
    error = UnsafeUrl(f"The address {verb} {problem}, which the studio does not connect to.")
    error.problem = problem
    return error


def _host_and_port(url: str, *, redirected: bool = False) -> tuple[str, int]:
    """UnsafeUrl unless `url` is http(s) with a host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port or IPv6 literal
        raise UnsafeUrl("The address is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        if redirected:
            raise UnsafeUrl("The address redirects to one that is not http or https.")
        raise UnsafeUrl("Only http:// and https:// addresses can be fetched.")
    if not host:
        raise UnsafeUrl("The address has no host name.")
    return host, port or (443 if scheme == "https" else 80)


def url_check(url: str, *, allow_loopback: bool | None = None) -> None:
    """Raise UnsafeUrl unless `url` is http(s) and every address its host
    resolves to is public (loopback too when allowed; FETCH_ALLOW_LOOPBACK
    by default). For checking an address before it is saved; a fetch checks
    again, at connection time, through `fetch_session`."""
    allow = allow_loopback_default() if allow_loopback is None else allow_loopback
    host, port = _host_and_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(
            "The address's host name could not be resolved, so it could not be checked."
        ) from None
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if problem := address_problem(ip, allow_loopback=allow):
            log.warning("refused %s: it resolves to %s, %s", host, ip, problem)
            raise _refused(problem)


class _GuardAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, refuse non-public, connect
    to the checked address), with our stricter rule and our error."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host = urlsplit(request.url).hostname
        try:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(
                request, verify, cert
            )
        except InvalidIPAddress as exc:
            ip = ipaddress.ip_address(str(exc.args[0]))
            problem = address_problem(ip, allow_loopback=self._allow_loopback) or NOT_PUBLIC
            log.warning("refused %s: it resolves to %s, %s", host, ip, problem)
            raise _refused(problem) from None
        ip = ipaddress.ip_address(host_params["host"].strip("[]"))
        if problem := address_problem(ip, allow_loopback=self._allow_loopback):
            log.warning("refused %s: it resolves to %s, %s", host, ip, problem)
            raise _refused(problem)
        return host_params, pool_kwargs


def fetch_session(
    *,
    allow_loopback: bool | None = None,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
) -> requests.Session:
    """A requests session that connects only to checked public addresses
    (loopback too when allowed), never follows a redirect, and ignores proxy
    settings in the environment. Raises UnsafeUrl from any request to an
    address it refuses, before connecting."""
    allow = allow_loopback_default() if allow_loopback is None else allow_loopback
    manager = Manager(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=allow,
            never_redirect=True,
            default_timeout=timeout,
            user_agent_override=USER_AGENT,
        )
    )
    session = manager.get_session()
    # A proxy would resolve the host itself, after our check; .netrc would add credentials.
    session.trust_env = False
    session.mount("http://", _GuardAdapter(is_https_proto=False, allow_loopback=allow))
    session.mount("https://", _GuardAdapter(is_https_proto=True, allow_loopback=allow))
    return session


def url_download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    max_seconds: float,
    max_redirects: int = 0,
    allow_loopback: bool | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Stream `url` into `dest` (created or truncated) and return its size.
    `progress(bytes so far)` is called after each piece; what it raises stops
    the download (nothing is kept).

    Only a 200 answer is saved. Redirects: with max_redirects=0 any redirect
    is refused; otherwise up to that many hops are followed, each one checked
    as a new address, and loopback is never allowed for a hop. Raises
    UnsafeUrl (refused: do not retry) or FetchFailed (may work later)."""
    allow = allow_loopback_default() if allow_loopback is None else allow_loopback
    deadline = time.monotonic() + max_seconds
    current = url
    timeouts = (connect_timeout, read_timeout)
    with (
        fetch_session(allow_loopback=allow, timeout=timeouts) as given,
        fetch_session(allow_loopback=False, timeout=timeouts) as redirected,
    ):
        for hop in range(max_redirects + 1):
            session = given if hop == 0 else redirected
            _host_and_port(current, redirected=hop > 0)
            try:
                response = _get(session, current, deadline, max_seconds, timeouts)
            except UnsafeUrl as exc:
                if hop == 0:
                    raise
                raise _refused(getattr(exc, "problem", NOT_PUBLIC), redirected=True) from None
            with response:
                if response.is_redirect:
                    if hop >= max_redirects:
                        raise _too_many_redirects(max_redirects)
                    target = session.get_redirect_target(response)
                    current = requote_uri(urljoin(current, target))
                    continue
                if response.status_code != 200:
                    raise FetchFailed(f"The server answered HTTP {response.status_code}.")
                return _save(response, dest, max_bytes, deadline, max_seconds, progress)
    raise AssertionError("unreachable")  # pragma: no cover


def _get(
    session: requests.Session,
    url: str,
    deadline: float,
    max_seconds: float,
    timeouts: tuple[float, float],
) -> requests.Response:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _too_slow(max_seconds)
    timeout = (min(timeouts[0], remaining), min(timeouts[1], remaining))
    try:
        return session.get(
            url,
            stream=True,
            timeout=timeout,
            allow_redirects=False,
            # The bytes as stored: a video gains nothing from compression.
            headers={"Accept-Encoding": "identity"},
        )
    except requests.Timeout:
        raise FetchFailed("The server did not answer in time.") from None
    except requests.ConnectionError:
        # requests' message holds the URL: keep it out.
        raise FetchFailed("The server could not be reached.") from None
    except requests.RequestException as exc:
        raise FetchFailed(f"The request failed ({type(exc).__name__}).") from None


def _save(
    response: requests.Response,
    dest: Path,
    max_bytes: int,
    deadline: float,
    max_seconds: float,
    progress: Callable[[int], None] | None = None,
) -> int:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    written = 0
    try:
        with open(dest, "wb") as out:
            while True:
                if time.monotonic() > deadline:
                    raise _too_slow(max_seconds)
                try:
                    # read1: what has arrived, so a dripping server cannot hold
                    # one read past the deadline.
                    chunk = response.raw.read1(CHUNK, decode_content=True)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise FetchFailed(f"The download broke off ({type(exc).__name__}).") from None
                if not chunk:
                    return written
                written += len(chunk)
                if written > max_bytes:
                    raise _too_large(max_bytes)
                out.write(chunk)
                if progress is not None:
                    progress(written)
    except BaseException:
        dest.unlink(missing_ok=True)  # nothing half-saved
        raise


def _too_many_redirects(max_redirects: int) -> UnsafeUrl:
    if max_redirects == 0:
        return UnsafeUrl("The address redirects elsewhere, and redirects are not followed.")
    return UnsafeUrl(f"The address redirected more than {max_redirects} times.")


def _too_large(max_bytes: int) -> FetchFailed:
    return FetchFailed(f"The file is larger than {max_bytes / 1024**2:g} MB.")


def _too_slow(max_seconds: float) -> FetchFailed:
    return FetchFailed(f"The download took longer than {max_seconds:g} s.")
