"""The SSRF guard (jobs/fetch.py): what it refuses, that it refuses before
any connection, that it connects to the address it checked, and its caps.

No connection leaves loopback: the `net` fixture (tests/fetch_support.py)
stubs the resolver and fails the test on any connect to another address,
except to PUBLIC_IP, which it routes to a local server standing in for a
public host."""

import time

import pytest
import requests

from jobs.net.fetch import (
    PRIVATE,
    FetchFailed,
    UnsafeUrl,
    fetch_session,
    url_check,
    url_download,
)
from tests.fetch_support import PUBLIC_IP, LoopbackServer

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64


@pytest.fixture(autouse=True)
def _loopback_refused(settings):
    settings.FETCH_ALLOW_LOOPBACK = False


def download(url, tmp_path, **options):
    options = {"max_bytes": 10 * 1024**2, "max_seconds": 10, **options}
    dest = tmp_path / "out.bin"
    size = url_download(url, dest, **options)
    return size, dest


# Each: a URL, and the words its refusal must contain.
REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost:8010/outputs/x.mp4", "loopback"),
    ("http://10.1.2.3/", "private network"),
    ("http://172.16.5.4/", "private network"),
    ("http://172.31.255.1/", "private network"),
    ("http://192.168.1.10/", "private network"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://100.64.0.1/", "private network"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private network"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[fd12:3456::1]/", "private network"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[64:ff9b::a00:1]/", "not on the public internet"),  # NAT64 of 10.0.0.1
    ("http://[2002:7f00:1::]/", "not on the public internet"),  # 6to4 of 127.0.0.1
    ("http://[::7f00:1]/", "not on the public internet"),  # IPv4-compatible: not in the library
    ("http://[fec0::1]/", "private network"),  # site-local: not in the library
    ("http://0.0.0.0/", "not on the public internet"),
    ("http://224.0.0.1/", "not on the public internet"),
    ("http://240.0.0.1/", "not on the public internet"),
    ("http://2130706433/", "loopback"),  # 127.0.0.1, decimal
    ("http://0177.0.0.1/", "loopback"),  # octal
    ("http://0x7f.1/", "loopback"),  # hexadecimal, short form
    ("http://017700000001/", "loopback"),  # octal, one number
    ("http://internal.example/", "private network"),
    ("http://metadata.example/computeMetadata/v1/", "link-local"),
]


@pytest.fixture
def names(net):
    net.resolve("internal.example", "10.0.0.5")
    net.resolve("metadata.example", "169.254.169.254")
    net.resolve("mixed.example", PUBLIC_IP, "10.0.0.7")
    net.resolve("cdn.example", PUBLIC_IP)
    return net


# --- url_check ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "words"), REFUSED)
def test_url_check_refuses_every_address_that_is_not_public(names, url, words):
    with pytest.raises(UnsafeUrl) as refused:
        url_check(url)
    assert words in str(refused.value)
    assert str(refused.value).startswith("The address resolves to")
    assert names.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://cdn.example/video.mp4",
        "file:///etc/passwd",
        "gopher://cdn.example:70/",
        "javascript:alert(1)",
        "cdn.example/video.mp4",
    ],
)
def test_url_check_refuses_other_schemes(names, url):
    with pytest.raises(UnsafeUrl, match="Only http:// and https://"):
        url_check(url)
    assert names.lookups == []


def test_url_check_refuses_a_url_without_a_host_or_with_a_bad_port(names):
    with pytest.raises(UnsafeUrl, match="no host name"):
        url_check("http:///video.mp4")
    with pytest.raises(UnsafeUrl, match="not a valid URL"):
        url_check("http://cdn.example:99999/")


def test_url_check_refuses_a_name_that_does_not_resolve(names):
    with pytest.raises(UnsafeUrl, match="could not be resolved"):
        url_check("https://nowhere.example/")


def test_url_check_refuses_a_name_with_any_private_address(names):
    """A fetch connects to the one address it checked; an address saved for
    later must be safe whichever of its addresses is used."""
    with pytest.raises(UnsafeUrl, match="private network"):
        url_check("https://mixed.example/")


def test_url_check_accepts_a_public_address_and_loopback_only_when_allowed(names, settings):
    url_check("https://cdn.example/v1")
    url_check(f"http://{PUBLIC_IP}/")
    with pytest.raises(UnsafeUrl, match="loopback"):
        url_check("http://127.0.0.1:8010")

    settings.FETCH_ALLOW_LOOPBACK = True
    url_check("http://127.0.0.1:8010")
    url_check("http://localhost:8010")
    url_check("http://[::1]:8010")
    url_check("http://2130706433:8010")
    # Only loopback: every other private range stays refused.
    for url in ("http://10.1.2.3/", "http://169.254.169.254/", "http://internal.example/"):
        with pytest.raises(UnsafeUrl):
            url_check(url)


def test_url_check_allow_loopback_argument_wins_over_the_setting(names, settings):
    settings.FETCH_ALLOW_LOOPBACK = True
    with pytest.raises(UnsafeUrl, match="loopback"):
        url_check("http://127.0.0.1", allow_loopback=False)


# --- url_download: refused before any connection -------------------------------------------


@pytest.mark.parametrize(("url", "words"), REFUSED)
def test_a_download_from_an_address_that_is_not_public_never_connects(names, tmp_path, url, words):
    with pytest.raises(UnsafeUrl) as refused:
        download(url, tmp_path)
    assert words in str(refused.value)
    assert names.connects == []
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("url", ["ftp://cdn.example/v.mp4", "file:///etc/passwd"])
def test_a_download_of_another_scheme_is_refused(names, tmp_path, url):
    with pytest.raises(UnsafeUrl, match="Only http:// and https://"):
        download(url, tmp_path)
    assert names.connects == []


def test_the_refusal_is_logged_with_the_host_but_not_the_url(names, tmp_path, caplog):
    secret = "X-Amz-Signature=deadbeefcafe"
    with pytest.raises(UnsafeUrl):
        download(f"http://internal.example/out.mp4?{secret}", tmp_path)
    ours = [r.getMessage() for r in caplog.records if r.name == "jobs.net.fetch"]
    assert ours == [f"refused internal.example: it resolves to 10.0.0.5, {PRIVATE}"]
    assert not any(secret in r.getMessage() for r in caplog.records)


# --- url_download: what it fetches ----------------------------------------------------------


def test_a_public_address_is_fetched_from_the_address_that_was_checked(names, serve, tmp_path):
    """DNS rebinding: the name answers a public address to the check, then
    127.0.0.1; the connection goes to the first answer, looked up once."""
    cdn = serve(LoopbackServer.body(VIDEO))
    names.resolve("rebind.example", PUBLIC_IP, then=("127.0.0.1",))
    names.stand_in(PUBLIC_IP, 80, cdn)

    size, dest = download("http://rebind.example/out.mp4", tmp_path)

    assert (size, dest.read_bytes()) == (len(VIDEO), VIDEO)
    assert names.connects == [(PUBLIC_IP, 80)]
    assert names.lookups.count("rebind.example") == 1
    assert [(s.path, s.host) for s in cdn.seen] == [("/out.mp4", "rebind.example")]


def test_loopback_is_fetched_only_when_allowed(net, serve, settings, tmp_path):
    local = serve(LoopbackServer.body(VIDEO))
    with pytest.raises(UnsafeUrl, match="loopback"):
        download(f"{local.url}/out.mp4", tmp_path)
    assert local.seen == [] and net.connects == []

    settings.FETCH_ALLOW_LOOPBACK = True
    size, dest = download(f"{local.url}/out.mp4", tmp_path)
    assert dest.read_bytes() == VIDEO
    assert len(local.seen) == 1


def test_a_decimal_address_is_connected_to_as_the_address_it_stands_for(
    net, serve, settings, tmp_path
):
    settings.FETCH_ALLOW_LOOPBACK = True
    local = serve(LoopbackServer.body(VIDEO))

    download(f"http://2130706433:{local.port}/out.mp4", tmp_path)

    assert net.connects == [("127.0.0.1", local.port)]
    assert local.seen[0].host == f"2130706433:{local.port}"


def test_an_answer_other_than_200_is_a_failure_that_may_pass(net, serve, settings, tmp_path):
    settings.FETCH_ALLOW_LOOPBACK = True
    gone = serve(LoopbackServer.body(b"no such video", status=404))
    with pytest.raises(FetchFailed, match="HTTP 404"):
        download(f"{gone.url}/out.mp4", tmp_path)
    assert not (tmp_path / "out.bin").exists()


def test_the_session_ignores_proxy_settings_in_the_environment(
    net, serve, settings, tmp_path, monkeypatch
):
    settings.FETCH_ALLOW_LOOPBACK = True
    target = serve(LoopbackServer.body(VIDEO))
    proxy = serve(LoopbackServer.body(b"from the proxy"))
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The positive control: a plain session goes through that proxy.
    with requests.Session() as plain:
        assert plain.get(f"{target.url}/out.mp4", timeout=5).content == b"from the proxy"
    assert len(proxy.seen) == 1

    size, dest = download(f"{target.url}/out.mp4", tmp_path)

    assert dest.read_bytes() == VIDEO
    assert len(proxy.seen) == 1 and len(target.seen) == 1


# --- redirects ---------------------------------------------------------------------------------


def test_a_redirect_to_a_private_address_is_refused_even_from_allowed_loopback(
    names, serve, settings, tmp_path
):
    settings.FETCH_ALLOW_LOOPBACK = True
    provider = serve(LoopbackServer.redirect("http://10.0.0.1/latest/meta-data/"))

    with pytest.raises(UnsafeUrl, match="redirects to a private network address"):
        download(f"{provider.url}/out.mp4", tmp_path, max_redirects=3)

    assert names.connects == [("127.0.0.1", provider.port)]


def test_a_redirect_never_leads_to_loopback_even_when_loopback_is_allowed(
    names, serve, settings, tmp_path
):
    """Loopback is for the address as given (the sandbox's links), never for a hop."""
    settings.FETCH_ALLOW_LOOPBACK = True
    internal = serve(LoopbackServer.body(b"internal secrets"))
    provider = serve(LoopbackServer.redirect(f"http://localhost:{internal.port}/admin"))

    with pytest.raises(UnsafeUrl, match="redirects to a loopback address"):
        download(f"{provider.url}/out.mp4", tmp_path, max_redirects=3)

    assert len(provider.seen) == 1
    assert internal.seen == [] and names.connects_to(internal.port) == 0


def test_a_redirect_from_a_public_host_to_a_name_of_a_private_address_is_refused(
    names, serve, tmp_path
):
    cdn = serve(LoopbackServer.redirect("http://internal.example/secret"))
    names.stand_in(PUBLIC_IP, 80, cdn)

    with pytest.raises(UnsafeUrl, match="redirects to a private network address"):
        download("http://cdn.example/out.mp4", tmp_path, max_redirects=3)

    assert names.connects == [(PUBLIC_IP, 80)]


@pytest.mark.parametrize("target", ["ftp://cdn.example/out.mp4", "file:///etc/passwd"])
def test_a_redirect_to_another_scheme_is_refused(names, serve, tmp_path, target):
    cdn = serve(LoopbackServer.redirect(target))
    names.stand_in(PUBLIC_IP, 80, cdn)

    with pytest.raises(UnsafeUrl, match="not http or https"):
        download("http://cdn.example/out.mp4", tmp_path, max_redirects=3)


def test_a_redirect_to_a_public_host_is_followed_and_checked_again(names, serve, tmp_path):
    storage = serve(LoopbackServer.body(VIDEO))
    api = serve(LoopbackServer.redirect("http://storage.example:9000/bucket/out.mp4?sig=1"))
    names.resolve("storage.example", "93.184.215.15")
    names.stand_in(PUBLIC_IP, 80, api)
    names.stand_in("93.184.215.15", 9000, storage)

    size, dest = download("http://cdn.example/out.mp4", tmp_path, max_redirects=3)

    assert dest.read_bytes() == VIDEO
    assert names.connects == [(PUBLIC_IP, 80), ("93.184.215.15", 9000)]
    assert [(s.path, s.host) for s in storage.seen] == [
        ("/bucket/out.mp4?sig=1", "storage.example:9000")
    ]


def test_redirects_are_followed_at_most_the_cap(names, serve, tmp_path):
    loop = serve(LoopbackServer.redirect("/again"))
    names.stand_in(PUBLIC_IP, 80, loop)

    with pytest.raises(UnsafeUrl, match="redirected more than 3 times"):
        download("http://cdn.example/out.mp4", tmp_path, max_redirects=3)

    assert len(loop.seen) == 4


def test_without_redirects_allowed_a_redirect_is_refused(names, serve, settings, tmp_path):
    settings.FETCH_ALLOW_LOOPBACK = True
    target = serve(LoopbackServer.body(VIDEO))
    names.resolve("storage.example", PUBLIC_IP)
    names.stand_in(PUBLIC_IP, 80, target)
    hop = serve(LoopbackServer.redirect("http://storage.example/out.mp4"))

    with pytest.raises(UnsafeUrl, match="redirects are not followed"):
        download(f"{hop.url}/out.mp4", tmp_path)

    assert target.seen == []


def test_the_session_itself_never_follows_a_redirect(names, serve):
    hop = serve(LoopbackServer.redirect("http://internal.example/"))
    with fetch_session(allow_loopback=True) as session:
        response = session.get(f"{hop.url}/x", allow_redirects=True, timeout=5)
    assert response.status_code == 302
    assert names.lookups.count("internal.example") == 0


# --- caps: size and time ----------------------------------------------------------------------


def _endless(h):
    """An endless body without a length; counts what it managed to send."""
    h.send_response(200)
    h.send_header("Content-Type", "video/mp4")
    h.send_header("Connection", "close")
    h.end_headers()
    chunk = b"\0" * 65536
    for _ in range(4096):  # 256 MiB at most
        h.wfile.write(chunk)
        h.owner.bytes_sent += len(chunk)


def test_a_body_larger_than_the_cap_stops_reading_early(net, serve, settings, tmp_path):
    settings.FETCH_ALLOW_LOOPBACK = True
    big = serve(_endless)

    started = time.monotonic()
    with pytest.raises(FetchFailed, match="larger than 1 MB"):
        download(f"{big.url}/out.mp4", tmp_path, max_bytes=1024**2)

    assert time.monotonic() - started < 5
    assert not (tmp_path / "out.bin").exists()
    # Socket buffers hold a few MB; the sender is stopped far before its 256 MiB.
    deadline = time.monotonic() + 5
    before = -1
    while big.bytes_sent != before and time.monotonic() < deadline:
        before = big.bytes_sent
        time.sleep(0.2)
    assert big.bytes_sent < 32 * 1024**2


def test_a_declared_length_over_the_cap_is_refused_before_reading(net, serve, settings, tmp_path):
    settings.FETCH_ALLOW_LOOPBACK = True

    def declares_10_gib(h):
        h.send_response(200)
        h.send_header("Content-Length", str(10 * 1024**3))
        h.end_headers()
        h.wfile.write(b"\0" * 1024)

    big = serve(declares_10_gib)
    with pytest.raises(FetchFailed, match="larger than 2048 MB"):
        download(f"{big.url}/out.mp4", tmp_path, max_bytes=2 * 1024**3)
    assert not (tmp_path / "out.bin").exists()


def test_a_server_that_drips_its_body_is_cut_off_at_the_time_cap(net, serve, settings, tmp_path):
    """Each byte comes well within the read timeout, so only the total cap can stop it."""
    settings.FETCH_ALLOW_LOOPBACK = True

    def drips(h):
        h.send_response(200)
        h.send_header("Content-Length", str(1024**2))
        h.end_headers()
        for _ in range(1024**2):
            h.wfile.write(b"\0")
            h.wfile.flush()
            time.sleep(0.05)

    slow = serve(drips)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="took longer than 1 s"):
        download(f"{slow.url}/out.mp4", tmp_path, max_seconds=1, read_timeout=10)
    took = time.monotonic() - started
    assert 1 <= took < 5, took  # far below the read timeout (10 s), let alone the drip


def test_a_server_that_sits_on_the_request_is_cut_off_at_the_time_cap(
    net, serve, settings, tmp_path
):
    settings.FETCH_ALLOW_LOOPBACK = True

    def sits(h):
        time.sleep(6)
        LoopbackServer.body(VIDEO)(h)

    slow = serve(sits)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="did not answer in time"):
        download(f"{slow.url}/out.mp4", tmp_path, max_seconds=1, read_timeout=30)
    assert time.monotonic() - started < 5  # the server answers after 6 s
