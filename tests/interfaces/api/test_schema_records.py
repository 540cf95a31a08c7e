"""Schemathesis on the record-writing routes of issue 13 (POST/PATCH/DELETE records, merge,
a record from an email): whatever the input, no server error, only documented status
codes, and answers that match the published schema. The fuzzed company has real records
and mail, so valid ids are among those tried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from mailroom.app import open_app
from mailroom.web.app import create_web_app
from tests.conftest import make_settings
from tests.conftest_web import seed_tenant

WRITES = {
    ("POST", "/api/v1/records"),
    ("PATCH", "/api/v1/records/{type}/{id}"),
    ("DELETE", "/api/v1/records/{type}/{id}"),
    ("POST", "/api/v1/records/{type}/{id}/merge"),
    ("POST", "/api/v1/messages/{message_id}/records"),
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    app = open_app(make_settings(Path(tmp_path_factory.mktemp("schema-records")) / "data"))
    tenant = seed_tenant(app, "Alpha")
    seed_tenant(app, "Beta")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_web_app(app))
    schema.config.headers = {"Authorization": f"Bearer {tenant.admin_token}"}
    yield schema
    app.close()


def test_record_writes_answer_every_generated_request_as_documented(
    api_schema: schemathesis.BaseSchema,
) -> None:
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    fuzzed: list[str] = []
    statuses: set[int] = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in WRITES:
            continue

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,  # the same examples every run: a pass is not luck
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            statuses.add(case.call_and_validate(checks=checks).status_code)

        fuzz()
        fuzzed.append(operation.label)
    assert len(fuzzed) == len(WRITES), fuzzed
    assert 422 in statuses and statuses & {200, 201, 204}, statuses
