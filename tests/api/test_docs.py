"""The API's own documentation: the OpenAPI document says how to authenticate, and the pages
that render it work with no network beyond the API (air-gapped clusters)."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.api import harness
from tests.api.harness import Api

make_api = harness.make_api  # the harness fixture, offered to this module

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT: HS256 with the shared secret, or RS256/ES256 from the OIDC issuer (docs/API.md).",
}


DAPR = {
    "type": "apiKey",
    "in": "header",
    "name": "dapr-api-token",
    "description": "Dapr's app API token: deliveries come from the API's own sidecar, never from users.",
}


def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_operation_that_refuses_the_anonymous_declares_the_bearer_scheme(
    make_api: Callable[..., Api], namespace: str
) -> None:
    """What the document says is what the server does: an operation declares the scheme if,
    and only if, a request without a token is answered 401."""
    api = make_api(namespace)
    document = api.anonymous().get("/openapi.json").json()
    assert document["components"]["securitySchemes"] == {"bearer": BEARER, "daprAppToken": DAPR}
    declared, refused = set(), set()
    with api.anonymous() as anonymous:
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                if operation.get("security"):
                    declared.add(f"{method} {path}")
                answer = anonymous.request(method, _filled(path))
                if answer.status_code == 401:
                    refused.add(f"{method} {path}")
    assert declared == refused
    user = {
        f"{m} {p}"
        for p, ms in document["paths"].items()
        for m, o in ms.items()
        if {"bearer": []} in o.get("security", [])
    }
    assert len(user) > 10, "the user's endpoints, at least"
    assert declared - user == {"post /events/{topic}"}, "only deliveries take the sidecar's token instead"


def test_the_documentation_pages_load_only_what_the_api_serves(
    make_api: Callable[..., Api], namespace: str
) -> None:
    api = make_api(namespace)
    with api.anonymous() as anonymous:
        for page, assets in (("/docs", 2), ("/redoc", 1)):
            html = anonymous.get(page)
            assert html.status_code == 200
            urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\\s*'([^']+)'""", html.text)
            found = [next(part for part in url if part) for url in urls]
            assert not [url for url in found if "://" in url or url.startswith("//")], (
                f"{page} loads from elsewhere"
            )
            scripts_and_styles = [url for url in found if url.endswith((".js", ".css"))]
            assert len(scripts_and_styles) >= assets
            for url in scripts_and_styles:
                asset = anonymous.get(url)
                assert asset.status_code == 200, url
                assert len(asset.content) > 10_000, f"{url} is the real bundle"


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def test_every_reference_in_the_document_resolves(make_api: Callable[..., Api], namespace: str) -> None:
    """The error answers named ProblemDocument, which the document did not hold."""
    document = make_api(namespace).anonymous().get("/openapi.json").json()
    references = set(_references(document))
    assert "#/components/schemas/ProblemDocument" in references
    schemas = document["components"]["schemas"]
    assert sorted(ref for ref in references if ref.removeprefix("#/components/schemas/") not in schemas) == []
    assert {"ProblemDocument", "FieldError"} <= set(schemas)


def test_every_operation_that_reads_if_match_documents_the_400_a_malformed_one_gets(
    make_api: Callable[..., Api], namespace: str
) -> None:
    """A header that is not an entity-tag list is answered 400 before anything else is read
    (api/preconditions.py); every operation taking If-Match says so (schemathesis found one that
    did not, with ``If-Match: null``)."""
    api = make_api(namespace)
    document = api.anonymous().get("/openapi.json").json()
    reading = {
        f"{method} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if any(
            p["in"] == "header" and p["name"].lower() == "if-match" for p in operation.get("parameters", [])
        )
    }
    assert len(reading) >= 6, "the writes of tasks and recurring tasks, at least"
    assert sorted(op for op, operation in reading.items() if "400" not in operation["responses"]) == []
    with api.as_user("alice@example.com") as alice:
        assert alice.post("/api/v1/tasks", json={"name": "milk", "title": "Buy milk"}).status_code == 201
        answer = alice.post("/api/v1/tasks/milk/complete", headers={"If-Match": "null"})
    assert answer.status_code == 400
    assert answer.json()["type"] == "https://todo.dev/problems/malformed-header"
