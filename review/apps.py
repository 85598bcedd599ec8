from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and sign-off"

    def ready(self) -> None:
        from cases.panels import panel_register
        from core.home import home_section_register
        from review.consult_panels import CONSULT_PANELS, HOME_SECTIONS
        from review.panels import PANELS

        for panel in (*PANELS, *CONSULT_PANELS):
            panel_register(panel)
        for section in HOME_SECTIONS:
            home_section_register(section)
