"""Included by ``hematovision_site.api_urls`` under /api/ (URL names in the ``api`` namespace)."""

from rest_framework.routers import SimpleRouter

from classifier.api import (
    InferenceJobViewSet,
    ModelVersionViewSet,
    QuickClassificationViewSet,
    SlideInferenceViewSet,
)

router = SimpleRouter()
router.register("slides", SlideInferenceViewSet, basename="slide-inference")
router.register("inference-jobs", InferenceJobViewSet, basename="inference-job")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("quick-classifications", QuickClassificationViewSet, basename="quick-classification")

urlpatterns = router.urls
