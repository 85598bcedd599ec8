"""Consults (second opinions), under /consults/ (URL names in the ``consults`` namespace)."""

from django.urls import path

from review import consult_views as views

app_name = "consults"

urlpatterns = [
    path("", views.inbox_view, name="inbox"),
    path("slides/<int:pk>/new/", views.consult_request_view, name="consult_request"),
    path("<int:pk>/", views.consult_detail_view, name="consult_detail"),
    path("<int:pk>/labels/", views.consult_labels_view, name="consult_labels"),
    path("<int:pk>/answer/", views.consult_answer_view, name="consult_answer"),
    path("<int:pk>/close/", views.consult_close_view, name="consult_close"),
    path("<int:pk>/cells/<int:cell_pk>/image/", views.consult_cell_image_view, name="consult_cell_image"),
]
