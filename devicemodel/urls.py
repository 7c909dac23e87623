from django.urls import path

from . import views

urlpatterns = [
    path("stations/<str:identity>/device-model/", views.device_model, name="device-model"),
    path("stations/<str:identity>/device-model/reports/", views.report_create, name="device-model-report"),
    path("stations/<str:identity>/device-model/variables/<int:pk>/set/", views.variable_set, name="device-model-set"),
]
