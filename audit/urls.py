from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list_view, name="event_list"),
    path("export.csv", views.event_export_csv_view, name="event_export_csv"),
]
