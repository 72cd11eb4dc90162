"""schemathesis against the service's own OpenAPI document: whatever it sends, the
service never answers 5xx, and every answer matches the documented schema and media type."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.samples import business_licence
from tests.service.conftest import make_service

# Each operation gets this many generated requests (hypothesis; the suite stays quick).
EXAMPLES_PER_OPERATION = 40


def test_no_input_gets_a_5xx_and_answers_match_the_schema(tmp_path, registry, agency_key):
    made = make_service(tmp_path, registry, agency_key, anonymous_rate=1e9, anonymous_burst=10**9)
    made.issue([business_licence(0)])
    # schemathesis fills Authorization with made-up keys (all refused with 401); a real
    # key lets the generated bodies reach the checks behind it.
    auth = {"Authorization": f"Bearer {made.key('contract-tests')}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    with made.client:
        api = schemathesis.openapi.from_asgi("/openapi.json", made.client.app)
        operations = [result.ok() for result in api.get_all_operations()]
        assert len(operations) >= 8
        calls: list[int] = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                suppress_health_check=list(HealthCheck),
                deadline=None,
                database=None,
            )
            def call(case):
                calls.append(case.call_and_validate(headers=auth, checks=checks).status_code)

            call()
        # Generated requests reached the service and got answers of many kinds.
        assert len(calls) > 8 * 10 and {200, 422} <= set(calls)
