"""A client generated from our OpenAPI document by someone else's generator, used for real.

openapi-python-client (pinned; installed in .venv-openapi by the Makefile) reads
``/openapi.json`` of the running API and writes a Python client; the README's REST
walkthrough then runs through that client, in the generator's own interpreter, against
the API, the operator and PostgreSQL. A document the generator cannot follow (a dangling
reference, a missing security scheme, a wrong response schema) fails here.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from tests import ROOT
from tests.api import harness
from tests.api.harness import ALICE, Api, token

api = harness.api  # the harness fixtures, offered to this module
make_api = harness.make_api

GENERATOR_VENV = ROOT / ".venv-openapi"
WALKTHROUGH = pathlib.Path(__file__).with_name("client_walkthrough.py")


def _generate(api: Api, folder: pathlib.Path) -> pathlib.Path:
    if not (GENERATOR_VENV / "bin" / "openapi-python-client").exists():
        pytest.fail("openapi-python-client is not installed: `make openapi-client` (part of `make test`)")
    document = folder / "openapi.json"
    document.write_text(api.anonymous().get("/openapi.json").text)
    generated = subprocess.run(
        [
            str(GENERATOR_VENV / "bin" / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # The generator says what it could not follow, and leaves it out of the client.
    assert "Cannot parse" not in generated.stdout + generated.stderr, generated.stdout
    return folder


def test_the_readme_walkthrough_through_a_generated_client(api: Api, tmp_path: pathlib.Path) -> None:
    folder = _generate(api, tmp_path)
    ran = subprocess.run(
        [str(GENERATOR_VENV / "bin" / "python"), str(WALKTHROUGH), api.url, token(ALICE)],
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = json.loads(ran.stdout)
    assert seen["anonymous"] == [401, "ProblemDocument", 401]
    assert (seen["created"], seen["first_title"], seen["completed_phase"]) == (
        "pay-rent",
        "Pay the rent",
        "Completed",
    )
    assert (seen["past"], seen["current"], seen["upcoming"]) == ([seen["first"]], [seen["second"]], 10)
    assert seen["search"] == sorted([seen["first"], seen["second"]])
    # Parsed by the client as date-times: instants in UTC (17:00 in Berlin).
    assert seen["preview"] == [
        "2026-01-30T16:00:00+00:00",
        "2026-02-27T16:00:00+00:00",
        "2026-03-27T16:00:00+00:00",
    ]
