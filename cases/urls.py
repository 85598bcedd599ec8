from django.urls import path

from cases import views

app_name = "cases"

urlpatterns = [
    path("patients/", views.patient_list_view, name="patient_list"),
    path("patients/new/", views.patient_create_view, name="patient_create"),
    path("patients/<int:pk>/", views.patient_detail_view, name="patient_detail"),
    path("patients/<int:pk>/edit/", views.patient_update_view, name="patient_update"),
    path("patients/<int:patient_pk>/slides/new/", views.slide_create_view, name="slide_create"),
    path("slides/", views.slide_list_view, name="slide_list"),
    path("slides/<int:pk>/", views.slide_detail_view, name="slide_detail"),
    path("slides/<int:pk>/edit/", views.slide_update_view, name="slide_update"),
    path("slides/<int:slide_pk>/upload/", views.cell_image_upload_view, name="cell_image_upload"),
    path("cell-images/<int:pk>/file/", views.cell_image_file_view, name="cell_image_file"),
    path("field-images/<int:pk>/file/", views.field_image_file_view, name="field_image_file"),
    path("cell-images/<int:pk>/delete/", views.cell_image_delete_view, name="cell_image_delete"),
]
