"""Schemathesis fuzzes every operation of the OpenAPI document: no input earns a 500."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from ragmem.server.app import create_app  # noqa: E402
from tests.server import conftest  # noqa: E402

# one app for the whole run: the store accumulates whatever the fuzzer created
_STORE = Path(tempfile.mkdtemp(prefix="ragmem-fuzz-"))
APP = create_app(conftest.settings(_STORE))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
