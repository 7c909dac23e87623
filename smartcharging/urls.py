from django.urls import path

from . import views

urlpatterns = [
    # Charging profiles (K-block): the station page's section
    path("stations/<str:identity>/charging-profiles/", views.station_profiles, name="station-profiles"),
    path("stations/<str:identity>/charging-profiles/set/", views.station_profile_set, name="station-profile-set"),
    path(
        "stations/<str:identity>/charging-profiles/<int:profile_id>/clear/",
        views.station_profile_clear,
        name="station-profile-clear",
    ),
    path("stations/<str:identity>/charging-profiles/get/", views.station_profiles_get, name="station-profiles-get"),
    path(
        "stations/<str:identity>/charging-profiles/ask-composite/",
        views.station_composite_ask,
        name="station-composite-ask",
    ),
]
