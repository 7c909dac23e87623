from django.urls import path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("stations/<str:identity>/", views.station_detail, name="station-detail"),
    path("stations/<str:identity>/commands/", views.command_create, name="command-create"),
    path("stations/<str:identity>/commands/<int:pk>/row/", views.command_row, name="command-row"),
    path("messages/", views.message_log, name="message-log"),
    path("messages/<int:pk>/", views.message_detail, name="message-detail"),
]
