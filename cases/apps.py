from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Clinical records"

    def ready(self) -> None:
        from cases.home import HOME_SECTIONS
        from core.home import home_section_register

        for section in HOME_SECTIONS:
            home_section_register(section)
