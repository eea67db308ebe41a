from django.test import RequestFactory

from jobs.net.ranged import ranged_file_response


def _get(path, range_header=None):
    headers = {"Range": range_header} if range_header else {}
    request = RequestFactory().get("/video", headers=headers)
    response = ranged_file_response(request, str(path), content_type="video/mp4")
    body = b"".join(response.streaming_content)
    return response, body


def test_it_serves_the_whole_file_and_says_ranges_are_accepted(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(bytes(range(256)) * 4)
    response, body = _get(path)
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert body == path.read_bytes()


def test_it_serves_a_byte_range_so_players_can_seek(tmp_path):
    path = tmp_path / "v.mp4"
    data = bytes(range(256)) * 4
    path.write_bytes(data)
    response, body = _get(path, "bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 100-199/1024"
    assert response["Content-Length"] == "100"
    assert body == data[100:200]


def test_open_ended_and_suffix_ranges(tmp_path):
    path = tmp_path / "v.mp4"
    data = bytes(range(256)) * 4
    path.write_bytes(data)
    assert _get(path, "bytes=1000-")[1] == data[1000:]
    assert _get(path, "bytes=-24")[1] == data[-24:]


def test_a_range_past_the_end_is_unsatisfiable(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"x" * 10)
    request = RequestFactory().get("/video", headers={"Range": "bytes=50-60"})
    response = ranged_file_response(request, str(path), content_type="video/mp4")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */10"
