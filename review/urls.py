from django.urls import path

from classifier import views as classifier_views
from review import views

app_name = "review"

urlpatterns = [
    path("", views.review_queue_view, name="queue"),
    path("slides/<int:pk>/", views.slide_review_view, name="slide_review"),
    path("slides/<int:pk>/bulk-confirm/", views.slide_bulk_confirm_view, name="slide_bulk_confirm"),
    path("slides/<int:pk>/gallery/reviews/", views.slide_gallery_review_view, name="slide_gallery_review"),
    path("slides/<int:pk>/retry/", views.slide_classification_retry_view, name="slide_classification_retry"),
    path("cells/<int:pk>/exclude/", views.cell_image_exclude_view, name="cell_image_exclude"),
    path("cells/<int:pk>/include/", views.cell_image_include_view, name="cell_image_include"),
    path("slides/<int:pk>/differential/", views.slide_differential_view, name="slide_differential"),
    path("slides/<int:pk>/sign/", views.slide_sign_view, name="slide_sign"),
    path("slides/<int:pk>/amend/", views.slide_amend_view, name="slide_amend"),
    path("slides/<int:pk>/report/", views.slide_report_view, name="slide_report"),
    path("slides/<int:pk>/report.pdf", views.slide_report_pdf_view, name="slide_report_pdf"),
    path("worklist/", views.worklist_view, name="worklist"),
    path("slides/<int:pk>/target/", views.slide_target_count_view, name="slide_target_count"),
    path("slides/<int:pk>/wbc-count/", views.slide_wbc_count_view, name="slide_wbc_count"),
    path("classes/", views.differential_class_list_view, name="class_list"),
    path("classes/new/", views.differential_class_create_view, name="class_create"),
    path("classes/<int:pk>/", views.differential_class_update_view, name="class_update"),
    path("classes/<int:pk>/move/", views.differential_class_move_view, name="class_move"),
    path("classes/target/", views.counting_default_target_view, name="counting_default_target"),
    path("slides/<int:pk>/export/", views.slide_export_view, name="slide_export"),
    path("patients/<int:pk>/export/", views.patient_export_view, name="patient_export"),
    path("exports/", views.range_export_view, name="range_export"),
    path("adapt/", views.lab_adaptation_view, name="lab_adaptation"),
    path("predictions/<int:pk>/", views.prediction_review_view, name="prediction_review"),
    path("fields/<int:pk>/", views.field_detail_view, name="field_detail"),
    path("fields/<int:pk>/cells/", views.field_cell_add_view, name="field_cell_add"),
    path(
        "predictions/<int:pk>/gradcam/", classifier_views.prediction_gradcam_view, name="prediction_gradcam"
    ),
    path(
        "predictions/<int:pk>/gradcam/request/",
        classifier_views.prediction_gradcam_request_view,
        name="prediction_gradcam_request",
    ),
]
