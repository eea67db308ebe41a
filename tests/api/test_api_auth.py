"""Keys: one identical 401 for every bad key, last use written, rate limits,
and errors as JSON everywhere under the API's paths."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.accounts.api_keys import api_key_revoke
from jobs.models import ApiKey

from .conftest import ApiClient

pytestmark = pytest.mark.django_db


def _unauthorized(response) -> dict:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Bearer"
    return response.json()


def test_missing_malformed_unknown_and_revoked_keys_get_the_same_answer(alice_key, api):
    key, raw = alice_key
    answers = [
        _unauthorized(ApiClient(None).get("/api/v1/me")),
        _unauthorized(ApiClient("sk_nope").get("/api/v1/me")),
        _unauthorized(ApiClient("not-a-key-at-all").get("/api/v1/me")),
        _unauthorized(ApiClient(raw[:-1] + ("A" if raw[-1] != "A" else "B")).get("/api/v1/me")),
        _unauthorized(ApiClient(None).get("/api/v1/me", headers={"Authorization": f"Basic {raw}"})),
    ]
    api_key_revoke(key=key)
    answers.append(_unauthorized(ApiClient(raw).get("/api/v1/me")))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["error"]["code"] == "unauthorized"
    assert raw not in str(answers)


def test_a_revoked_key_is_refused_on_every_route(alice_key, api):
    key, raw = alice_key
    assert api.get("/api/v1/me").status_code == 200
    api_key_revoke(key=key)
    assert api.get("/api/v1/me").status_code == 401
    assert api.get("/api/v1/jobs").status_code == 401
    assert api.post("/api/v1/lipsync-image", {"formState": {}}).status_code == 401
    response = api.get("/v1/tasks/abc")
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": response.json()["message"], "data": None}


def test_last_used_is_written_at_most_once_a_minute(alice_key, api, django_assert_max_num_queries):
    key, _raw = alice_key
    assert key.last_used_at is None
    api.get("/api/v1/me")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    api.get("/api/v1/me")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first  # not rewritten
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("/api/v1/me")
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_me_names_the_key_the_member_and_both_balances(api, alice):
    answer = api.get("/api/v1/me").json()
    assert answer["key"]["name"] == "render script"
    assert answer["member"]["username"] == "alice"
    assert answer["balances"]["api"] == {"balance": 500, "held": 0, "available": 500}
    assert answer["balances"]["studio"] == {"balance": 0, "held": 0, "available": 0}


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(api, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    codes = [api.get("/api/v1/me").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    refused = api.get("/api/v1/me")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"


def test_the_rate_limit_is_per_key(api, bob_api, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    for _ in range(2):
        api.get("/api/v1/me")
    assert api.get("/api/v1/me").status_code == 429
    assert bob_api.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/no-such-thing", 404, "not_found"),
        ("delete", "/api/v1/me", 405, "method_not_allowed"),
        ("get", "/api/v1/lipsync-image", 405, "method_not_allowed"),
    ],
)
def test_errors_outside_the_routes_are_json(api, method, path, status, code):
    response = getattr(api.client, method)(path, headers={"Authorization": f"Bearer {api.raw}"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_joypix_paths_answer_errors_in_its_envelope(api):
    response = api.client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["code"] == 404
    assert response.json()["data"] is None


def test_a_server_error_is_json_and_says_nothing_of_the_cause(api, monkeypatch):
    from jobs.api import lipsync

    def broken(**_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(lipsync, "me_answer", broken)
    response = api.get("/api/v1/me")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert b"secret internals" not in response.content


def test_no_session_or_csrf_token_is_needed(api, media_server, no_submit):
    client = api.client
    client.handler.enforce_csrf_checks = True
    response = api.post("/api/v1/quote", {"model": "lipsync-image", "seconds": 4, "formState": {}})
    assert response.status_code == 200, response.content


def test_the_openapi_document_lists_both_contracts(api):
    lipsync = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/lipsync-image" in lipsync["paths"]
    assert "LipsyncImageRequest" in lipsync["components"]["schemas"]
    joypix = api.client.get("/v1/openapi.json").json()
    assert "/v1/lip-sync/motion-2-dialog" in joypix["paths"]
    assert "/v1/lip-sync/motion-2" in joypix["paths"]


def test_keys_never_reach_the_log(alice_key, api, settings, caplog):
    key, raw = alice_key
    settings.DEBUG = True
    with caplog.at_level("DEBUG"):
        ApiClient(None).get("/api/v1/me", headers={"Authorization": f"Token {raw}"})
        ApiClient(raw + "x").get("/api/v1/me")
        api.get("/api/v1/me")
    assert caplog.records  # a positive control: requests were logged
    assert all(raw not in record.getMessage() for record in caplog.records)


def test_the_docs_page_is_served_without_a_key(api):
    response = api.client.get("/api/v1/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/v1/openapi.json"])
def test_every_reference_in_the_openapi_documents_resolves(api, path):
    import json
    import re

    document = api.client.get(path).json()
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs  # a positive control: the bodies are referenced
    assert refs <= set(document["components"]["schemas"])
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"
