from django.urls import path

from . import site_views

urlpatterns = [
    path("sites/", site_views.site_list, name="site-list"),
    path("sites/<int:pk>/", site_views.site_detail, name="site-detail"),
    path("sites/<int:pk>/load/", site_views.site_load, name="site-load"),
]
