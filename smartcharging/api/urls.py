from django.urls import path

from . import profiles

urlpatterns = [
    # Charging profiles (K-block)
    path(
        "stations/<str:identity>/charging-profiles/",
        profiles.ChargingProfilesView.as_view(),
        name="station-charging-profiles",
    ),
    path(
        "stations/<str:identity>/charging-profiles/reports/",
        profiles.ChargingProfileReportsView.as_view(),
        name="station-charging-profile-reports",
    ),
    path(
        "stations/<str:identity>/composite-schedule/",
        profiles.composite_schedule_view,
        name="station-composite-schedule",
    ),
]
