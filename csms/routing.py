from django.urls import re_path

from stations.consumers import StationConsumer

websocket_urlpatterns = [
    # The identity is the last path segment; a trailing slash is tolerated (some firmwares add one).
    re_path(r"^ocpp/(?P<identity>[^/]+)/?$", StationConsumer.as_asgi()),
]
