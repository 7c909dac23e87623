from django.urls import path

from . import views

urlpatterns = [
    path("security/", views.alerts, name="security-alerts"),
    path("stations/<str:identity>/security-feed/", views.station_feed, name="station-security-feed"),
    path("security/events/<int:pk>/acknowledge/", views.acknowledge, name="security-event-acknowledge"),
    path(
        "security/stations/<str:identity>/certificates/",
        views.station_certificates,
        name="security-station-certificates",
    ),
    path(
        "security/stations/<str:identity>/certificates/refresh/",
        views.station_certificates_refresh,
        name="station-certificates-refresh-page",
    ),
    path(
        "security/stations/<str:identity>/certificates/install/",
        views.station_certificate_install,
        name="station-certificate-install-page",
    ),
    path(
        "security/stations/<str:identity>/certificates/<int:pk>/delete/",
        views.station_certificate_delete,
        name="station-certificate-delete-page",
    ),
    path(
        "security/stations/<str:identity>/certificate-requests/<int:pk>/revoke/",
        views.station_certificate_revoke,
        name="station-certificate-revoke-page",
    ),
]
