from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import display_messages, views

router = DefaultRouter()
router.register("commands", views.CommandViewSet, basename="command")
router.register("bulk-commands", views.BulkCommandViewSet, basename="bulk-command")
router.register("stations", views.StationViewSet, basename="station")

urlpatterns = [
    path("stations/<str:identity>/commands/", views.station_commands, name="station-commands"),
    path(
        "stations/<str:identity>/display-messages/",
        display_messages.DisplayMessagesView.as_view(),
        name="station-display-messages",
    ),
    path(
        "stations/<str:identity>/display-messages/reports/",
        display_messages.DisplayMessageReportsView.as_view(),
        name="station-display-message-reports",
    ),
    path(
        "stations/<str:identity>/display-messages/<int:message_id>/",
        display_messages.DisplayMessageClearView.as_view(),
        name="station-display-message",
    ),
    path("", include(router.urls)),
]
