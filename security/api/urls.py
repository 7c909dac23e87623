from django.urls import path

from . import views

urlpatterns = [
    path(
        "stations/<str:identity>/security-events/",
        views.StationSecurityEventList.as_view(),
        name="station-security-events",
    ),
    path("stations/<str:identity>/events/", views.StationEventList.as_view(), name="station-events"),
    path(
        "stations/<str:identity>/password-rotations/",
        views.StationPasswordRotations.as_view(),
        name="station-password-rotations",
    ),
]
