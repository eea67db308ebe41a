"""Inputs by URL go through the studio's one SSRF guard: private, loopback,
link-local, CGNAT and mapped addresses, in every spelling, and redirects or
names that lead to them, are refused on the field that gave them, and no
connection is made to them (the `net` fixture stubs the resolver and
records every connect)."""

import pytest

from jobs.models import Job, Upload
from tests.fetch_support import PUBLIC_IP, LoopbackServer

pytestmark = pytest.mark.django_db

REFUSED = [
    "http://127.0.0.1/face.png",
    "http://localhost/face.png",
    "http://10.0.0.7/face.png",
    "http://172.16.4.2/face.png",
    "http://192.168.1.10/face.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.9/face.png",
    "http://[::1]/face.png",
    "http://[::ffff:127.0.0.1]/face.png",
    "http://2130706433/face.png",  # 127.0.0.1 in decimal
    "http://0177.0.0.1/face.png",  # 127.0.0.1 in octal
    "http://0x7f.0.0.1/face.png",  # and in hex
    "http://internal.example/face.png",  # a name that resolves to a private address
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_private_address_is_refused_on_its_field_without_connecting(
    api, net, settings, no_submit, url
):
    settings.FETCH_ALLOW_LOOPBACK = False
    net.resolve("internal.example", "10.20.30.40")
    body = {"formState": {"image": url, "audio": "https://cdn.example/voice.mp3"}}
    response = api.post("/api/v1/lipsync-image", body)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["field"] == "formState.image"
    assert "the studio does not connect to" in error["message"]
    assert url.split("/")[2] not in error["message"]  # the address is not echoed
    assert net.connects == []  # nothing reached, loopback included
    assert not Job.objects.exists() and not Upload.objects.exists()


def test_a_redirect_to_a_private_address_is_refused(api, net, serve, settings, no_submit):
    settings.FETCH_ALLOW_LOOPBACK = False
    bouncer = serve(LoopbackServer.redirect("http://10.0.0.5/face.png"))
    net.resolve("cdn.example", PUBLIC_IP)
    net.stand_in(PUBLIC_IP, 80, bouncer)
    body = {
        "formState": {
            "image": "http://cdn.example/face.png",
            "audio": "http://cdn.example/voice.mp3",
        }
    }
    response = api.post("/api/v1/lipsync-image", body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "formState.image"
    assert "redirects to a private network address" in error["message"]
    assert len(bouncer.seen) == 1  # the public hop was asked, once
    assert all(host != "10.0.0.5" for host, _port in net.connects)


def test_the_joypix_route_is_guarded_the_same(api, net, settings, no_submit):
    settings.FETCH_ALLOW_LOOPBACK = False
    body = {
        "left_audio_url": "http://169.254.169.254/latest/meta-data/iam",
        "right_audio_url": "http://169.254.169.254/x",
        "image_url": "http://[::ffff:10.0.0.1]/face.png",
    }
    response = api.post("/v1/lip-sync/motion-2-dialog", body)
    assert response.status_code == 422
    message = response.json()["message"]
    assert message.startswith("image_url: ") and "does not connect to" in message
    assert net.connects == []


def test_a_public_address_is_fetched(api, net, serve, settings, media_files, no_submit):
    """Positive control: the guard lets a public host through (played by a loopback server)."""
    settings.FETCH_ALLOW_LOOPBACK = False
    files = {"/face.png": media_files["face.png"], "/voice.mp3": media_files["voice.mp3"]}
    server = serve(lambda h: LoopbackServer.body(files[h.path].read_bytes())(h))
    net.resolve("cdn.example", PUBLIC_IP)
    net.stand_in(PUBLIC_IP, 80, server)
    body = {
        "formState": {
            "image": "http://cdn.example/face.png",
            "audio": "http://cdn.example/voice.mp3",
        }
    }
    response = api.post("/api/v1/lipsync-image", body)
    assert response.status_code == 200, response.content
    assert [seen.path for seen in server.seen] == ["/face.png", "/voice.mp3"]
