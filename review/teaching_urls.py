"""Teaching (proficiency sets), under /teaching/ (URL names in the ``teaching`` namespace)."""

from django.urls import path

from review import teaching_views as views

app_name = "teaching"

urlpatterns = [
    path("", views.set_list_view, name="set_list"),
    path("sets/new/", views.set_create_view, name="set_create"),
    path("sets/<int:pk>/", views.set_detail_view, name="set_detail"),
    path("sets/<int:pk>/assign/", views.set_assign_view, name="set_assign"),
    path("sets/<int:pk>/results.csv", views.set_results_export_view, name="set_results_export"),
    path("mine/", views.my_sets_view, name="my_sets"),
    path("sets/<int:pk>/start/", views.attempt_start_view, name="attempt_start"),
    path("attempts/<int:pk>/", views.attempt_take_view, name="attempt_take"),
    path("attempts/<int:pk>/answer/", views.attempt_answer_view, name="attempt_answer"),
    path("attempts/<int:pk>/finish/", views.attempt_finish_view, name="attempt_finish"),
    path("attempts/<int:pk>/result/", views.attempt_result_view, name="attempt_result"),
    path("sets/<int:set_pk>/cells/<int:pk>/image/", views.item_image_view, name="item_image"),
    path("sets/<int:set_pk>/cells/<int:pk>/gradcam/", views.item_gradcam_view, name="item_gradcam"),
    path(
        "sets/<int:set_pk>/cells/<int:pk>/gradcam/request/",
        views.item_gradcam_request_view,
        name="item_gradcam_request",
    ),
]
