from django.urls import path

from . import views

urlpatterns = [
    path("sessions/", views.session_list, name="session-list"),
    path("sessions/export.csv", views.session_csv, name="session-csv"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("id-tokens/", views.id_token_list, name="id-token-list"),
    path("tariffs/", views.tariff_list, name="tariff-list"),
    path("id-tokens/new/", views.id_token_create, name="id-token-create"),
    path("id-tokens/<int:pk>/status/", views.id_token_set_status, name="id-token-status"),
    path("stations/<str:identity>/reservations/", views.station_reservations, name="station-reservations"),
    path("reservations/<int:pk>/cancel/", views.reservation_cancel, name="reservation-cancel"),
]
