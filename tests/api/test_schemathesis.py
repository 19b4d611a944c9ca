"""Property-based: schemathesis drives every operation of the app's own OpenAPI document.

Bounded (a few examples per operation) so it stays part of the test run; it
checks no 5xx, documented status codes and content types, and responses that
match their schemas.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as st_checks

from tests.api import harness
from tests.api.harness import ALICE, Api, token
from tests.hostile import tally

# The harness fixtures, offered to this module.
make_api = harness.make_api


@pytest.fixture
def api_schema(make_api: Callable[..., Api], namespace: str, operator: object) -> schemathesis.Schema:
    api = make_api(namespace, writes_per_minute=100_000, previews_per_minute=100_000)
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


# schemathesis' pytest plugin (from_fixture) does not run under pytest 9: drive hypothesis directly.
def test_no_server_errors_and_no_schema_violations(api_schema: schemathesis.Schema) -> None:
    headers = {"Authorization": f"Bearer {token(ALICE, admin=True)}"}
    failures: list[str] = []
    cases = 0  # generated requests, for the run's count of hostile cases (tests/hostile/tally.py)
    deadline = time.monotonic() + 60
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(
                headers=headers,
                checks=[
                    st_checks.not_a_server_error,
                    st_checks.status_code_conformance,
                    st_checks.content_type_conformance,
                    st_checks.response_schema_conformance,
                ],
            )

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(error)[:1500]}")
        if time.monotonic() > deadline:
            break
    tally.record("schemathesis/REST API", cases)
    assert not failures, "\n\n".join(failures)
