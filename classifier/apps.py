from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    verbose_name = "Classifier"

    def ready(self) -> None:
        from cases.panels import panel_register
        from cases.signals import cell_images_added
        from classifier import receivers
        from classifier.panels import PANELS
        from classifier.readiness import CHECKS
        from core.readiness import readiness_check_register

        cell_images_added.connect(
            receivers.cell_images_classify, dispatch_uid="classifier.cell_images_classify"
        )
        for panel in PANELS:
            panel_register(panel)
        for name, check in CHECKS.items():
            readiness_check_register(name, check)
