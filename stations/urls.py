from django.urls import path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("stations/<str:identity>/", views.station_detail, name="station-detail"),
    path("stations/<str:identity>/commands/", views.command_create, name="command-create"),
    path("stations/<str:identity>/connections/", views.station_connections, name="station-connections"),
    path("stations/<str:identity>/remote-control/", views.station_remote_control, name="station-remote-control"),
    path("stations/<str:identity>/commands/<int:pk>/row/", views.command_row, name="command-row"),
    path("stations/<str:identity>/display-messages/", views.station_display_messages, name="station-display-messages"),
    path("stations/<str:identity>/display-messages/set/", views.display_message_set, name="display-message-set"),
    path("stations/<str:identity>/display-messages/get/", views.display_messages_get, name="display-messages-get"),
    path(
        "stations/<str:identity>/display-messages/<int:message_id>/clear/",
        views.display_message_clear,
        name="display-message-clear",
    ),
    path("messages/", views.message_log, name="message-log"),
    path("messages/<int:pk>/", views.message_detail, name="message-detail"),
]
