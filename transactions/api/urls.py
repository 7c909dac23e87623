from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import customers, tariffs, views

router = SimpleRouter()
router.register("transactions", views.TransactionViewSet, basename="transaction")
router.register("id-tokens", views.IdTokenViewSet, basename="id-token")
router.register("reservations", views.ReservationViewSet, basename="reservation")
router.register("customer-information", customers.CustomerInformationViewSet, basename="customer-information")
router.register("tariffs", tariffs.TariffViewSet, basename="tariff")

urlpatterns = [
    path("transactions/export.csv", views.CdrExportView.as_view(fmt="csv"), name="transaction-export-csv"),
    path("transactions/export.json", views.CdrExportView.as_view(fmt="json"), name="transaction-export-json"),
    path("", include(router.urls)),
]
