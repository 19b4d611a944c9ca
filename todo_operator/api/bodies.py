"""What a request body must be before a route reads it: JSON, of a media type the route accepts.

FastAPI reads a body as JSON only when its Content-Type says so; anything
else reaches the model as bytes and fails as "Input should be a valid
dictionary" (422), blaming the content for what is the label's fault.
Malformed JSON comes out as a 422 naming the character offset as the
field, and a number of more than 4,300 digits (Python's limit on reading
integers) as a bare 400. So every route with a JSON body is a
:class:`JsonRoute`, which checks first, and answers as RFC 9110 and 9457 ask:

- 415 when the Content-Type is not one the route accepts (absent with a
  body, too), with ``Accept-Post`` or ``Accept-Patch`` naming what is;
  ``application/json`` everywhere, and ``application/merge-patch+json``
  (RFC 7396) on PATCH, whose bodies are merge patches. JSON is UTF-8
  (RFC 8259 §8.1): another ``charset`` is refused, the parameter itself is not.
- 400 for a body that is not JSON, saying where (line and column) and
  naming no field.
- 422 naming the field whose number has too many digits to read.

The body is already whole in memory (``app.BodyLimit`` read it), and what
is parsed here is what the route's model gets: Starlette keeps the parsed
JSON on the request, so it is parsed once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, Final

from fastapi import Request, Response
from fastapi.routing import APIRoute

from todo_operator.api import problems

JSON: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
CLOUDEVENTS: Final = "application/cloudevents+json"


def accepted_media_types(method: str) -> tuple[str, ...]:
    return (JSON, MERGE_PATCH) if method == "PATCH" else (JSON,)


def check_media_type(
    content_type: str | None, *, has_body: bool, accepted: Sequence[str], method: str
) -> None:
    """415 unless ``content_type`` is one of ``accepted`` (parameters aside); nothing to type is fine.

    Without a body and without a Content-Type there is nothing to judge: the
    route's own validation says that the body is missing (422).
    """
    if not content_type and not has_body:
        return
    media_type, _, parameters = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    charset = _parameter(parameters, "charset")
    if media_type in accepted and charset in (None, "utf-8", "utf8"):
        return
    shown = f"{content_type!r}" if content_type else "no Content-Type"
    # RFC 5789 §2.2 names Accept-Patch for this; Accept-Post (W3C LDP, IANA-registered) is its POST twin.
    hint = "Accept-Patch" if method == "PATCH" else "Accept-Post"
    raise problems.Problem(
        415,
        f"the request body must be {' or '.join(accepted)} (UTF-8), got {shown}",
        kind="unsupported-media-type",
        headers={hint: ", ".join(accepted)},
    )


def _parameter(parameters: str, name: str) -> str | None:
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"').lower()
    return None


async def read_json(request: Request, *, accepted: Sequence[str]) -> None:
    """Check the body's media type and parse it, or answer 415, 400 or 422 (see the module)."""
    body = await request.body()
    check_media_type(
        request.headers.get("content-type"), has_body=bool(body), accepted=accepted, method=request.method
    )
    if not body:
        return
    try:
        await request.json()
    except json.JSONDecodeError as error:
        raise problems.Problem(
            400,
            f"the request body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            kind="invalid-json",
        ) from None
    except UnicodeDecodeError:
        raise problems.Problem(400, "the request body is not valid UTF-8", kind="invalid-json") from None
    except RecursionError:
        raise problems.Problem(400, "the request body is nested too deeply", kind="invalid-json") from None
    except ValueError:
        # The one ValueError json.loads raises past the decode errors: an integer of more digits
        # than Python reads (sys.get_int_max_str_digits). Read again to find where it is.
        raise _too_many_digits(body) from None


class _TooManyDigits:
    """Stands, in a second reading, where a number too long to read was."""


def _too_many_digits(body: bytes) -> problems.Problem:
    limit = sys.get_int_max_str_digits()

    def integer(text: str) -> int | _TooManyDigits:
        return int(text) if len(text.lstrip("-")) <= limit else _TooManyDigits()

    try:
        document = json.loads(body, parse_int=integer)
    except ValueError as error:  # not the digits after all: say what json found
        return problems.Problem(400, f"the request body is not valid JSON: {error}", kind="invalid-json")
    message = f"the number has more than {limit} digits"
    # The path as the client wrote it (the wire names, as in every other problem of this API).
    fields = [".".join(str(part) for part in path) or "body" for path in _paths_to_too_long(document)]
    return problems.Problem(
        422,
        "; ".join(f"{field}: {message}" for field in fields),
        kind="invalid-input",
        errors=[problems.FieldError(field=field, message=message) for field in fields],
    )


def _paths_to_too_long(value: Any, path: tuple[int | str, ...] = ()) -> Iterator[tuple[int | str, ...]]:
    if isinstance(value, _TooManyDigits):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_to_too_long(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_to_too_long(item, (*path, index))


class JsonRoute(APIRoute):
    """A route whose JSON body (if it has one) is checked by :func:`read_json` before FastAPI reads it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        if self.body_field is not None:
            self.responses = {**problems.responses(400, 415), **self.responses}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            await read_json(request, accepted=accepted_media_types(request.method))
            return await handler(request)

        return checked
