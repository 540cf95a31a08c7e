"""Schemathesis against the published OpenAPI schema: no input makes the API fail.

Every GET operation is fuzzed (a bounded number of examples each) with a valid token,
and every answer must be no server error, have a documented status code and match its
documented schema. POST operations start real syncs and are covered by test_contract.py.
"""

from __future__ import annotations

import dataclasses
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
from mailroom_testing.dns_server import DnsServer
from tests.conftest import make_settings
from tests.conftest_web import seed_tenant


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer
) -> Iterator[schemathesis.BaseSchema]:
    settings = make_settings(Path(tmp_path_factory.mktemp("schema")) / "data")
    # GET /discover looks addresses up: at the local DNS server, never the machine's.
    app = open_app(dataclasses.replace(settings, dns_server=dns_server.address))
    tenant = seed_tenant(app, "Alpha")
    seed_tenant(app, "Beta")
    web = create_web_app(app)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web)
    schema.config.headers = {"Authorization": f"Bearer {tenant.admin_token}"}
    yield schema
    app.close()


def test_api_answers_every_generated_request_without_a_server_error(
    api_schema: schemathesis.BaseSchema,
) -> None:
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    fuzzed = []
    calls = []
    for result in api_schema.include(method="GET").get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            calls.append(case.call_and_validate(checks=checks).status_code)

        fuzz()
        fuzzed.append(operation.label)
    assert len(fuzzed) >= 6, fuzzed
    assert len(calls) > 5 * len(fuzzed) and 200 in calls and 422 in calls


def test_schema_publishes_the_contract_routes(api_schema: schemathesis.BaseSchema) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {
        "/api/v1/records",
        "/api/v1/records/{type}/{id}",
        "/api/v1/records/{type}/{id}/timeline",
        "/api/v1/messages/{message_id}",
        "/api/v1/mailboxes",
    } <= paths
