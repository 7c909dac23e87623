"""The request type of views that read ``request.htmx`` (set by django-htmx's HtmxMiddleware, in settings)."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """For type checking only: at run time views get a plain HttpRequest with ``htmx`` added by the middleware."""

    htmx: HtmxDetails
