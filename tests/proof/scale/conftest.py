"""A seeded database shared by the scale tests of a module: a small dataset, then 10,000 cells.

Seeding once per module (a few seconds) instead of per test: the rows are written inside a
transaction opened here and rolled back when the module is done; each test runs in a savepoint
inside it (pytest-django's ``db``), so nothing leaks to other tests.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection, reset_queries, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from devtools.scale_pages import PAGES, PageCase, scale_users
from devtools.scale_seed import ScaleDataset, SeedPlan, scale_dataset_create
from tests.conftest import audit_sequence_restart
from tests.factories import model_version_make

SMALL = SeedPlan(prefix="SMALL", cells=20, cells_per_slide=2, slides_per_patient=2, seed=1)
LARGE = SeedPlan(prefix="LARGE", cells=10_000, cells_per_slide=100, slides_per_patient=4, seed=2)


@dataclass
class ScaleWorld:
    small: ScaleDataset
    large: ScaleDataset
    # Status and number of queries of each page when only the small dataset existed.
    small_pages: dict[str, tuple[int, int]]


def page_get(page: PageCase, dataset: ScaleDataset, role: Role) -> tuple[int, int, bytes]:
    """Status, number of queries and body of one request by a freshly logged-in user of ``role``."""
    client = Client()
    client.force_login(scale_users()[role])
    # Each request empties the query log; start from an empty one so nothing is miscounted.
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(page.url(dataset))
        body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, len(queries), body


@pytest.fixture(scope="module")
def scale_world(django_db_setup, django_db_blocker) -> Iterator[ScaleWorld]:
    with django_db_blocker.unblock(), transaction.atomic():
        audit_sequence_restart()  # the seeded trail is checked from its start
        users = scale_users()
        model_version = model_version_make("scale-test", is_active=True)
        seed = {"lab_staff": users[Role.LAB_STAFF], "pathologist": users[Role.PATHOLOGIST]}
        small = scale_dataset_create(plan=SMALL, model_version=model_version, **seed)
        small_pages = {page.name: page_get(page, small, page.role)[:2] for page in PAGES}
        large = scale_dataset_create(plan=LARGE, model_version=model_version, **seed)
        yield ScaleWorld(small=small, large=large, small_pages=small_pages)
        transaction.set_rollback(True)
