from __future__ import annotations

from typing import TYPE_CHECKING

from csms.asgi_urls import asgi_re_path
from stations.consumers import StationConsumer
from stations.live import DashboardConsumer

if TYPE_CHECKING:
    from csms.asgi_urls import Routes

station_urlpatterns: Routes = [
    # The identity is the last path segment; a trailing slash is tolerated (some firmwares add one).
    asgi_re_path(r"^ocpp/(?P<identity>[^/]+)/?$", StationConsumer.as_asgi()),
]

# Below /ws/ (session auth + Origin check applied in asgi.py).
browser_urlpatterns: Routes = [
    asgi_re_path(r"^dashboard/$", DashboardConsumer.as_asgi()),
    asgi_re_path(r"^stations/(?P<identity>[^/]+)/$", DashboardConsumer.as_asgi()),
]
