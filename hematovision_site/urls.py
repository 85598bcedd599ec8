from django.urls import include, path

from core import views

handler404 = "core.views.not_found"
urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("ready/", views.ready, name="ready"),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    path("review/", include("review.urls")),
    path("teaching/", include("review.teaching_urls")),
    path("consults/", include("review.consult_urls")),
    path("api/", include("hematovision_site.api_urls")),
    path("", include("cases.urls")),
    path("", include("classifier.urls")),
]
