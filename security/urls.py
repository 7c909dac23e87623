from django.urls import path

from . import views

urlpatterns = [
    path("security/", views.alerts, name="security-alerts"),
    path("security/events/<int:pk>/acknowledge/", views.acknowledge, name="security-event-acknowledge"),
]
