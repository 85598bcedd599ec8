from django.urls import include, path

from hematovision_site import views

handler404 = "hematovision_site.views.not_found"
urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    path("review/", include("classifier.review_urls")),
    path("api/", include("hematovision_site.api_urls")),
    path("", include("cases.urls")),
    path("", include("classifier.urls")),
]
