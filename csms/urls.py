from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from security.views import ThrottledLoginView

from . import metrics, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("csms.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("transactions.urls")),
    path("", include("devicemodel.urls")),
    path("", include("security.urls")),
    path("", include("firmware.urls_files")),
    path("", include("firmware.firmware_urls")),
    path("", include("smartcharging.site_urls")),
    path("", include("smartcharging.urls")),
    path("", include("stations.urls")),
]
