from django.urls import path

from . import views

urlpatterns = [
    path("stations/<str:identity>/device-model/", views.DeviceModelView.as_view(), name="station-device-model"),
    path("stations/<str:identity>/reports/", views.ReportJobsView.as_view(), name="station-reports"),
    path("stations/<str:identity>/reports/<int:pk>/", views.ReportJobView.as_view(), name="station-report"),
    path("stations/<str:identity>/monitors/", views.MonitorsView.as_view(), name="station-monitors"),
]
