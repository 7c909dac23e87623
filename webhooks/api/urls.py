from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("webhooks", views.WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = [path("", include(router.urls))]
