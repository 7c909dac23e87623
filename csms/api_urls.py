"""The REST API, mounted at ``/api/v1/``: each app contributes its ``api/urls.py``."""

from django.urls import include, path

from security.api.auth import obtain_auth_token

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("", include("stations.api.urls")),
    path("", include("transactions.api.urls")),
    path("", include("devicemodel.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("security.api.urls")),
    path("", include("firmware.api.log_urls")),
    path("", include("firmware.api.firmware_urls")),
    path("", include("smartcharging.api.sites")),
    path("", include("smartcharging.api.urls")),
]
