from django.urls import path

from . import views

urlpatterns = [
    path("query", views.query),
    path("form", views.form),
    path("upload", views.upload),
    path("json", views.json_echo),
    path("redirect", views.go_elsewhere),
    path("cookies", views.cookies),
    path("stream", views.stream),
    path("nocontent", views.nocontent),
    path("digest", views.digest),
]
