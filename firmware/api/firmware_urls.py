from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import firmware

router = SimpleRouter()
router.register("firmware", firmware.FirmwareImageViewSet, basename="firmware")
router.register("firmware-rollouts", firmware.FirmwareRolloutViewSet, basename="firmware-rollout")

urlpatterns = [path("", include(router.urls))]
