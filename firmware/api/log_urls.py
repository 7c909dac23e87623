from rest_framework.routers import SimpleRouter

from . import logs

router = SimpleRouter()
router.register("log-requests", logs.LogRequestViewSet, basename="log-request")

urlpatterns = router.urls
