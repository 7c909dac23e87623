"""In-process API calls with Django's test client and a token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import Client


def streamed(response: HttpResponseBase) -> Iterator[bytes]:
    """The chunks of a streamed answer (the test client returns the view's StreamingHttpResponse)."""
    assert isinstance(response, StreamingHttpResponse), type(response)
    return iter(response)


def client_for(token: str | None) -> Client:
    return Client(headers={"Authorization": f"Token {token}"} if token else {})


def call(token: str | None, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    client = client_for(token)
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs = {"data": body, "content_type": "application/json"}
    response = getattr(client, method.lower())(path, **kwargs)
    if response.streaming:
        return response.status_code, b"".join(response.streaming_content)
    try:
        return response.status_code, response.json() if response.content else None
    except ValueError:
        return response.status_code, response.content.decode()
