from django.urls import path

from classifier import views as classifier_views
from review import views

app_name = "review"

urlpatterns = [
    path("", views.review_queue_view, name="queue"),
    path("slides/<int:pk>/", views.slide_review_view, name="slide_review"),
    path("slides/<int:pk>/bulk-confirm/", views.slide_bulk_confirm_view, name="slide_bulk_confirm"),
    path("slides/<int:pk>/retry/", views.slide_classification_retry_view, name="slide_classification_retry"),
    path("cells/<int:pk>/exclude/", views.cell_image_exclude_view, name="cell_image_exclude"),
    path("cells/<int:pk>/include/", views.cell_image_include_view, name="cell_image_include"),
    path("slides/<int:pk>/differential/", views.slide_differential_view, name="slide_differential"),
    path("slides/<int:pk>/sign/", views.slide_sign_view, name="slide_sign"),
    path("slides/<int:pk>/amend/", views.slide_amend_view, name="slide_amend"),
    path("slides/<int:pk>/export/", views.slide_export_view, name="slide_export"),
    path("patients/<int:pk>/export/", views.patient_export_view, name="patient_export"),
    path("exports/", views.range_export_view, name="range_export"),
    path("adapt/", views.lab_adaptation_view, name="lab_adaptation"),
    path("predictions/<int:pk>/", views.prediction_review_view, name="prediction_review"),
    path(
        "predictions/<int:pk>/gradcam/", classifier_views.prediction_gradcam_view, name="prediction_gradcam"
    ),
    path(
        "predictions/<int:pk>/gradcam/request/",
        classifier_views.prediction_gradcam_request_view,
        name="prediction_gradcam_request",
    ),
]
