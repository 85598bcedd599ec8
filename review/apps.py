from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and sign-off"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from cases.panels import panel_register
        from core.home import home_section_register
        from review.class_defaults import defaults_ensure_after_migrate
        from review.consult_panels import CONSULT_PANELS
        from review.consult_panels import HOME_SECTIONS as CONSULT_HOME_SECTIONS
        from review.home import HOME_SECTIONS
        from review.panels import PANELS

        for panel in (*PANELS, *CONSULT_PANELS):
            panel_register(panel)
        for section in (*HOME_SECTIONS, *CONSULT_HOME_SECTIONS):
            home_section_register(section)
        post_migrate.connect(defaults_ensure_after_migrate, sender=self)
