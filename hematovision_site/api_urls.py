from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from accounts.api import TokenObtainView, UserViewSet
from audit.api import AuditEventViewSet
from cases.api import CellImageViewSet, FieldImageViewSet, PatientViewSet, SlideViewSet
from core.api import ApiDocsView

app_name = "api"

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("slides", SlideViewSet, basename="slide")
router.register("cell-images", CellImageViewSet, basename="cell-image")
router.register("field-images", FieldImageViewSet, basename="field-image")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiDocsView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
    path("", include("classifier.api_urls")),
    path("", include("review.api_urls")),
]
