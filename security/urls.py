from django.urls import path

from . import views

urlpatterns = [
    path("security/", views.alerts, name="security-alerts"),
    path("stations/<str:identity>/security-feed/", views.station_feed, name="station-security-feed"),
    path("security/events/<int:pk>/acknowledge/", views.acknowledge, name="security-event-acknowledge"),
]
