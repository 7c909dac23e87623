from django.urls import path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("stations/<str:identity>/", views.station_detail, name="station-detail"),
    path("messages/", views.message_log, name="message-log"),
]
