from django.urls import path

from classifier import views

app_name = "classifier"

urlpatterns = [
    path("slides/<int:pk>/submit/", views.slide_submit_view, name="slide_submit"),
    path(
        "inference-jobs/<int:pk>/progress/", views.inference_job_progress_view, name="inference_job_progress"
    ),
    path("quick-classify/", views.quick_classify_view, name="quick_classify"),
    path("quick-classify/<int:pk>/", views.quick_classify_result_view, name="quick_classify_result"),
    path("quick-classify/<int:pk>/status/", views.quick_classify_status_view, name="quick_classify_status"),
    path("quick-classify/<int:pk>/image/", views.quick_classify_image_view, name="quick_classify_image"),
    path("models/", views.model_version_list_view, name="model_version_list"),
    path("models/<int:pk>/", views.model_version_detail_view, name="model_version_detail"),
    path("models/<int:pk>/files/<str:name>", views.model_version_image_view, name="model_version_image"),
    path("models/<int:pk>/activate/", views.model_version_activate_view, name="model_version_activate"),
    path("models/<int:pk>/compare/", views.model_version_compare_view, name="model_version_compare"),
    path("models/adaptation-runs/<int:pk>/", views.adaptation_run_detail_view, name="adaptation_run_detail"),
    path(
        "models/adaptation-runs/<int:pk>/progress/",
        views.adaptation_run_progress_view,
        name="adaptation_run_progress",
    ),
    path(
        "models/adaptation-runs/<int:pk>/cancel/",
        views.adaptation_run_cancel_view,
        name="adaptation_run_cancel",
    ),
]
