from django.urls import re_path

from stations.consumers import StationConsumer
from stations.live import DashboardConsumer

station_urlpatterns = [
    # The identity is the last path segment; a trailing slash is tolerated (some firmwares add one).
    re_path(r"^ocpp/(?P<identity>[^/]+)/?$", StationConsumer.as_asgi()),
]

# Below /ws/ (session auth + Origin check applied in asgi.py).
browser_urlpatterns = [
    re_path(r"^dashboard/$", DashboardConsumer.as_asgi()),
    re_path(r"^stations/(?P<identity>[^/]+)/$", DashboardConsumer.as_asgi()),
]
