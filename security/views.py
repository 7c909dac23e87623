"""The security page (every station's unacknowledged critical events, the latest security events) and acknowledging
a critical event (it leaves the alerts)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from stations import selectors as station_selectors
from stations.commands import CommandValidationError, helpers
from stations.models import ChargingStation

from . import certificates, logins, selectors, services
from .api.certificates import INSTALLABLE
from .models import CertificateRequest, InstalledCertificate
from .templatetags.security_tags import can_acknowledge

ALERTS_SHOWN = 200
RECENT_SHOWN = 100
CERTIFICATE_REQUESTS_SHOWN = 50


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "security/alerts.html",
        {
            "alerts": list(selectors.open_alerts()[:ALERTS_SHOWN]),
            "recent": list(selectors.recent_events()[:RECENT_SHOWN]),
            "can_ack": can_acknowledge(request),
        },
    )


@require_POST
@login_required
@permission_required("security.change_securityevent", raise_exception=True)
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    services.security_event_acknowledge(event_id=pk, user=request.user)
    if request.headers.get("HX-Request"):
        return HttpResponse("")  # htmx removes the alert
    back = request.POST.get("next", "")
    ok = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return redirect(back if ok else "security-alerts")


@login_required
@require_GET
def station_feed(request: HttpRequest, identity: str) -> HttpResponse:
    """A station page's security feed and alerts (re-fetched live when the station reports an event)."""
    station = station_selectors.station_by_identity(identity=identity)
    if station is None:
        raise Http404(f"No station {identity}")
    return render(request, "security/_station_feed_fragment.html", {"station": station})


class ThrottledLoginView(auth_views.LoginView):
    """The dashboard's login with failed attempts limited per username and address (``security/logins.py``)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        if logins.login_refused(address=logins.client_address(request), username=username):
            context = self.get_context_data(form=AuthenticationForm(request), login_refused=logins.REFUSED_MESSAGE)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        logins.login_failed(address=logins.client_address(self.request), username=form.data.get("username", ""))
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        logins.login_succeeded(address=logins.client_address(self.request), username=form.get_user().get_username())
        return super().form_valid(form)


# --- A station's certificates ---------------------------------------------------------------------------------


def _may_send(request: HttpRequest) -> bool:
    return bool(request.user.has_perm("stations.add_command"))


@login_required
@permission_required("stations.view_chargingstation", raise_exception=True)
def station_certificates(request: HttpRequest, identity: str) -> HttpResponse:
    station = get_object_or_404(ChargingStation, identity=identity)
    return render(
        request,
        "security/certificates.html",
        {
            "station": station,
            "installed": list(selectors.installed_certificates(station=station)),
            "requests": list(selectors.certificate_requests(station=station)[:CERTIFICATE_REQUESTS_SHOWN]),
            "installable": INSTALLABLE,
            "can_send": _may_send(request),
            "can_revoke": request.user.is_staff,
            "notice": request.GET.get("notice", "")[:200],
        },
    )


def _back(identity: str, notice: str) -> HttpResponse:
    return redirect(f"{reverse('security-station-certificates', args=[identity])}?{urlencode({'notice': notice})}")


@require_POST
@login_required
@permission_required("stations.add_command", raise_exception=True)
def station_certificates_refresh(request: HttpRequest, identity: str) -> HttpResponse:
    station = get_object_or_404(ChargingStation, identity=identity)
    command = helpers.get_installed_certificate_ids(station, user=request.user)
    return _back(identity, f"GetInstalledCertificateIds: {command.state}")


@require_POST
@login_required
@permission_required("stations.add_command", raise_exception=True)
def station_certificate_install(request: HttpRequest, identity: str) -> HttpResponse:
    station = get_object_or_404(ChargingStation, identity=identity)
    certificate_type = request.POST.get("certificate_type", "")
    if certificate_type not in INSTALLABLE:
        return _back(identity, "choose a certificate type")
    try:
        command = certificates.certificate_install(
            station=station,
            certificate_type=certificate_type,
            pem=request.POST.get("certificate", ""),
            user=request.user,
        )
    except (ValueError, CommandValidationError) as exc:
        return _back(identity, f"not sent: {exc}")
    return _back(identity, f"InstallCertificate: {command.state}")


@require_POST
@login_required
@permission_required("stations.add_command", raise_exception=True)
def station_certificate_delete(request: HttpRequest, identity: str, pk: int) -> HttpResponse:
    station = get_object_or_404(ChargingStation, identity=identity)
    get_object_or_404(InstalledCertificate, pk=pk, station=station)
    command = certificates.certificate_delete(station=station, installed_id=pk, user=request.user)
    return _back(identity, f"DeleteCertificate: {command.state}")


@require_POST
@login_required
def station_certificate_revoke(request: HttpRequest, identity: str, pk: int) -> HttpResponse:
    if not request.user.is_staff:
        return HttpResponse("only administrators revoke certificates", status=403)
    row = get_object_or_404(CertificateRequest, pk=pk, station__identity=identity)
    done = certificates.certificate_revoke(request_id=row.pk, user=request.user)
    return _back(identity, "revoked: the CRL lists it" if done else "nothing to revoke")
