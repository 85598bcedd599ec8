"""Fill a throwaway database for the load test: 10,000 cells with predictions and reviews (their
image files are a few real cells stored once), and one login per role for the virtual users."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.roles import Role
from cases.models import Patient
from classifier.services import model_version_active
from devtools.benchmark import shared_test_images
from devtools.scale_seed import SeedPlan, scale_dataset_create

PREFIX = "LOAD"
LOAD_USERNAMES = {Role.LAB_STAFF: "load-labstaff", Role.PATHOLOGIST: "load-pathologist"}
STORED_IMAGES = 40


class Command(BaseCommand):
    help = "Seed N cells (default 10,000) and the load-test users; refuses production settings."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--cells", type=int, default=10_000)
        parser.add_argument("--password", required=True, help="password of the load-test users")

    def handle(self, *args, cells: int, password: str, **options) -> None:
        if not settings.HEMATOVISION_DEMO_USERS_ALLOWED:
            raise CommandError("This writes made-up patients: never run it on a production database.")
        users = {role: _user(username, role, password) for role, username in LOAD_USERNAMES.items()}
        if Patient.objects.filter(mrn__startswith=f"{PREFIX}-").exists():
            self.stdout.write("Already seeded.")
            return
        dataset = scale_dataset_create(
            plan=SeedPlan(prefix=PREFIX, cells=cells, file_names=_stored_images(), image_format="JPEG"),
            lab_staff=users[Role.LAB_STAFF],
            pathologist=users[Role.PATHOLOGIST],
            model_version=model_version_active(),
        )
        self.stdout.write(
            f"Seeded {dataset.cells} cells, {dataset.predictions} predictions and {dataset.reviews} reviews "
            f"on {len(dataset.slides)} slides of {len(dataset.patients)} patients."
        )


def _user(username: str, role: Role, password: str) -> User:
    user, _ = User.objects.get_or_create(
        username=username, defaults={"first_name": "Load", "last_name": role.label}
    )
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=role.value)])
    return user


def _stored_images() -> tuple[str, ...]:
    """A few real cells (shared TEST split) stored through the storage API; seeded cells share them."""
    try:
        paths = shared_test_images(STORED_IMAGES)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"Need the shared TEST images ({error}).") from error
    return tuple(
        default_storage.save(f"cell-images/seed/{Path(path).name}", ContentFile(path.read_bytes()))
        for path in paths
    )
