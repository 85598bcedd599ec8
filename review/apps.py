from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and sign-off"

    def ready(self) -> None:
        from cases.panels import panel_register
        from review.panels import PANELS

        for panel in PANELS:
            panel_register(panel)
