from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("commands", views.CommandViewSet, basename="command")
router.register("bulk-commands", views.BulkCommandViewSet, basename="bulk-command")
router.register("stations", views.StationViewSet, basename="station")

urlpatterns = [
    path("stations/<str:identity>/commands/", views.station_commands, name="station-commands"),
    path("", include(router.urls)),
]
