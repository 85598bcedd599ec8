"""Included by ``hematovision_site.api_urls`` under /api/ (URL names in the ``api`` namespace)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from review import api as review_api
from review import consult_api, teaching_api

urlpatterns = [
    path(
        "predictions/<int:pk>/reviews/", review_api.PredictionReviewView.as_view(), name="prediction-review"
    ),
    path(
        "cell-images/<int:pk>/exclusions/",
        review_api.CellImageExclusionView.as_view(),
        name="cell-image-exclusion",
    ),
    path(
        "slides/<int:pk>/classification-retry/",
        review_api.SlideClassificationRetryView.as_view(),
        name="slide-classification-retry",
    ),
    path("exports/slides/<int:pk>/", review_api.SlideExportView.as_view(), name="export-slide"),
    path("exports/patients/<int:pk>/", review_api.PatientExportView.as_view(), name="export-patient"),
    path("exports/cells/", review_api.RangeExportView.as_view(), name="export-range"),
]

router = SimpleRouter()
router.register("adaptation-runs", review_api.AdaptationRunViewSet, basename="adaptation-run")
router.register("consults", consult_api.ConsultViewSet, basename="consult")
router.register("proficiency-sets", teaching_api.ProficiencySetViewSet, basename="proficiency-set")
router.register(
    "my-proficiency-sets", teaching_api.AssignedProficiencySetViewSet, basename="my-proficiency-set"
)
router.register(
    "proficiency-attempts", teaching_api.ProficiencyAttemptViewSet, basename="proficiency-attempt"
)
urlpatterns += router.urls
