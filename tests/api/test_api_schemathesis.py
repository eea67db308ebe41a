"""Schemathesis against the live API: both OpenAPI documents are loaded from
the running studio, and every operation gets a bounded, derandomized run of
generated requests, valid and invalid (negative data includes requests with
no key), sent with a real key holding API credits. No answer may be a 5xx,
and every answer must be one its document declares: the status code, the
content type and the body's schema.

Offline: the `net` fixture resolves no name and lets no connection leave
loopback, so a generated input URL is refused by the SSRF guard (or fails to
resolve), never fetched; no job reaches a provider, so no sandbox is needed.
The count of requests sent goes to tests/artifacts/schemathesis.txt."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobs.accounts.api_keys import api_key_create
from jobs.api import lipsync
from jobs.credits.ledger import credits_grant
from jobs.models import Pool
from tests.pipeline_support import _seed_rates

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTS = ("/api/v1/openapi.json", "/v1/openapi.json")
EXAMPLES = 25  # per operation, for valid and again for invalid data
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class Run:
    """What one schemathesis run sent and found."""

    sent: Counter = field(default_factory=Counter)  # operation -> requests
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    operations: int = 0

    @property
    def requests(self) -> int:
        return sum(self.sent.values())


def schemathesis_run(base_url: str, *, auth: dict, examples: int, only: str = "") -> Run:
    """Every operation of both documents (or those whose label contains
    `only`), `examples` valid and `examples` invalid requests each."""
    run = Run()
    settings = hypothesis.settings(
        max_examples=examples,
        derandomize=True,  # the same requests on every run: a failure reproduces
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    for document in DOCUMENTS:
        schema = schemathesis.openapi.from_url(f"{base_url}{document}", timeout=10)
        for result in schema.get_all_operations():
            operation = result.ok()
            if only not in operation.label:
                continue
            run.operations += 1
            for mode in MODES:
                try:
                    _operation_run(operation, mode, settings, base_url=base_url, auth=auth, run=run)
                # Every operation runs, then all are reported. (Several failures of
                # one request come as a FailureGroup, a BaseExceptionGroup.)
                except (Exception, FailureGroup) as exc:  # noqa: BLE001
                    run.failures.append(f"{operation.label} ({mode.value}): {exc}")
    return run


def _operation_run(operation, mode, settings, *, base_url: str, auth: dict, run: Run) -> None:
    @settings
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(base_url=base_url, headers=auth, timeout=30)
        run.sent[operation.label] += 1
        run.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=auth)

    check()


@pytest.fixture
def api_auth(alice, settings, net, media_root):
    """A key with API credits, prices seeded, no rate limit in the way (429
    has its own tests), and a network that never leaves loopback."""
    _seed_rates()  # quotes need prices; a transactional test starts empty
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    credits_grant(user=alice, pool=Pool.API, amount=10_000, key="grant:alice:api:schemathesis")
    _key, raw = api_key_create(owner=alice, name="schemathesis")
    return {"Authorization": f"Bearer {raw}"}


def test_every_operation_answers_as_its_document_says(live_server, api_auth, artifacts):
    started = time.monotonic()
    run = schemathesis_run(live_server.url, auth=api_auth, examples=EXAMPLES)
    seconds = time.monotonic() - started
    report = [
        f"schemathesis {schemathesis.__version__}: {run.requests} requests to "
        f"{run.operations} operations in {seconds:.0f} s; up to {EXAMPLES} valid and "
        f"{EXAMPLES} invalid examples each, derandomized",
        "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(run.statuses.items())),
        *(f"  {label}: {count}" for label, count in sorted(run.sent.items())),
        f"failures: {len(run.failures)}",
        *run.failures,
    ]
    (artifacts / "schemathesis.txt").write_text("\n".join(report) + "\n")
    print("\n" + report[0])
    assert run.operations == 11  # eight at /api/v1/, three at /v1/
    assert len(run.sent) == run.operations  # each was called
    assert run.failures == [], "\n\n".join(run.failures)


@pytest.mark.parametrize(
    "broken, found",
    [
        (lambda **_: {"key": "not an object"}, "Response violates schema"),
        (lambda **_: 1 / 0, "Server error"),
    ],
    ids=["undocumented body", "server error"],
)
def test_the_run_catches_an_answer_outside_the_document(
    live_server, api_auth, monkeypatch, broken, found
):
    """The positive control: GET /api/v1/me made to answer a body its schema
    does not allow, or to fail (500), is reported."""
    monkeypatch.setattr(lipsync, "me_answer", broken)
    run = schemathesis_run(live_server.url, auth=api_auth, examples=3, only="/api/v1/me")
    assert run.operations == 1 and run.requests > 0
    assert any(found in failure for failure in run.failures), run.failures
