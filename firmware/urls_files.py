from django.urls import path

from . import views_files

urlpatterns = [
    path("log-requests/", views_files.log_requests, name="log-requests"),
    path("log-requests/new/", views_files.log_request_create, name="log-request-create"),
    path("log-requests/protocol/", views_files.station_protocol_set, name="log-request-protocol"),
    path("log-requests/<int:pk>/file/", views_files.log_request_download, name="log-request-file"),
]
