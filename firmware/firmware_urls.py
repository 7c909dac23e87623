"""URLs of firmware images and rollouts: the stations' signed downloads and the operators' pages."""

from django.urls import path

from . import downloads
from . import rollout_views as views

urlpatterns = [
    path("fw/<str:token>/<str:name>", downloads.firmware_download, name="firmware-download"),
    path("firmware/", views.firmware_list, name="firmware-list"),
    path("firmware/rollouts/new/", views.rollout_new, name="firmware-rollout-new"),
    path("firmware/rollouts/<int:pk>/", views.rollout_detail, name="firmware-rollout"),
    path("firmware/rollouts/<int:pk>/progress/", views.rollout_progress, name="firmware-rollout-progress"),
    path("firmware/rollouts/<int:pk>/cancel/", views.rollout_cancel, name="firmware-rollout-cancel"),
]
