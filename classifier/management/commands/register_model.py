from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from classifier.adapter import ModelLoadError
from classifier.services import model_version_register


class Command(BaseCommand):
    help = "Register a model directory (its files' sha256 recorded); --activate to serve it at once."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("directory", type=Path)
        parser.add_argument("--activate", action="store_true")

    def handle(self, *args, directory: Path, activate: bool, **options) -> None:
        try:
            model_version = model_version_register(directory=directory, activate=activate)
        except (ValidationError, ModelLoadError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Registered {model_version.name}{' (active)' if model_version.is_active else ''}.")
