from django.core.management.base import BaseCommand, CommandError

from classifier.services import model_version_register_default


class Command(BaseCommand):
    help = "Register the default model under ml/models (once); it becomes active if none is."

    def handle(self, *args, **options) -> None:
        model_version = model_version_register_default()
        if model_version is None:
            raise CommandError("No default model directory found; see ml/README or HEMATOVISION_MODEL_DIR.")
        state = "active" if model_version.is_active else "registered, not active"
        self.stdout.write(f"Model {model_version.name} ({state}), sha256 {model_version.sha256[:12]}…")
