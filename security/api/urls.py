from django.urls import path

from . import certificates, views

urlpatterns = [
    path(
        "stations/<str:identity>/security-events/",
        views.StationSecurityEventList.as_view(),
        name="station-security-events",
    ),
    path("stations/<str:identity>/events/", views.StationEventList.as_view(), name="station-events"),
    path(
        "stations/<str:identity>/certificates/",
        certificates.StationCertificateList.as_view(),
        name="station-certificates",
    ),
    path(
        "stations/<str:identity>/certificates/refresh/",
        certificates.StationCertificateRefresh.as_view(),
        name="station-certificates-refresh",
    ),
    path(
        "stations/<str:identity>/certificates/<int:pk>/",
        certificates.StationCertificateDelete.as_view(),
        name="station-certificate-delete",
    ),
    path(
        "stations/<str:identity>/certificate-requests/",
        certificates.StationCertificateRequestList.as_view(),
        name="station-certificate-requests",
    ),
    path(
        "stations/<str:identity>/certificate-requests/<int:pk>/revoke/",
        certificates.CertificateRevoke.as_view(),
        name="station-certificate-revoke",
    ),
    path("trusted-roots/", certificates.TrustedRootList.as_view(), name="trusted-roots"),
    path("trusted-roots/<int:pk>/", certificates.TrustedRootDetail.as_view(), name="trusted-root"),
    path(
        "stations/<str:identity>/password-rotations/",
        views.StationPasswordRotations.as_view(),
        name="station-password-rotations",
    ),
]
