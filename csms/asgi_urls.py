"""URL patterns for Channels' URLRouter, typed the way Channels' stubs expect them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.urls import re_path

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern

    # What URLRouter takes (a list, so the element type must be exactly this union).
    Routes: TypeAlias = list[_ExtendedURLPattern | URLRouter]


def asgi_re_path(route: str, app: Callable[..., Awaitable[object]]) -> _ExtendedURLPattern:
    """Django's re_path() with an ASGI application (a consumer's as_asgi(), a router, a middleware) as its view.

    django-stubs type a view as returning an HttpResponse; Channels' stubs want a pattern whose callback is an
    ASGI app. At run time both are the same URLPattern: only the types are bridged here.
    """
    return cast("_ExtendedURLPattern", re_path(route, cast(Any, app)))
