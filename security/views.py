"""Acknowledging a critical security event (it leaves the alerts of the overview and the station page)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import services


@require_POST
@login_required
@permission_required("security.change_securityevent", raise_exception=True)
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    services.security_event_acknowledge(event_id=pk, user=request.user)
    if request.headers.get("HX-Request"):
        return HttpResponse("")  # htmx removes the alert
    back = request.POST.get("next", "")
    ok = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return redirect(back if ok else "overview")
