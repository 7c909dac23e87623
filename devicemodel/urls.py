from django.urls import path

from . import views

urlpatterns = [
    path("stations/<str:identity>/device-model/", views.device_model, name="device-model"),
    path("stations/<str:identity>/device-model/reports/", views.report_create, name="device-model-report"),
    path("stations/<str:identity>/device-model/refresh/", views.variables_refresh, name="device-model-refresh"),
    path("stations/<str:identity>/device-model/variables/<int:pk>/set/", views.variable_set, name="device-model-set"),
    path("stations/<str:identity>/device-model/variables/<int:pk>/monitor/", views.monitor_set, name="monitor-set"),
    path(
        "stations/<str:identity>/device-model/monitors/<int:monitor_id>/clear/",
        views.monitor_clear,
        name="monitor-clear",
    ),
    path("stations/<str:identity>/device-model/monitoring/", views.monitoring_request, name="monitoring-request"),
    path(
        "stations/<str:identity>/device-model/event-alerts/<int:pk>/acknowledge/",
        views.event_alert_acknowledge,
        name="event-alert-acknowledge",
    ),
    path("device-model/event-alerts/", views.event_alerts, name="event-alerts"),
]
