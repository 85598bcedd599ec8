"""The lab at work, for `scripts/load.sh`: lab staff browse and upload cells, pathologists work the
review queue and record reviews, and pathologists download results (CSV, JSON, FHIR).

Users log in through the login form like a browser; every write carries the CSRF token. Any 5xx
is a failure (Locust counts other non-2xx answers as failures too). Request names group URLs by
page (``/slides/[id]/``) so the statistics give one p95 per page.
"""

import io
import json
import os
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from locust import HttpUser, between, task
from PIL import Image

PASSWORD = os.environ.get("LOAD_PASSWORD", "")
IMAGES_DIR = Path(
    os.environ.get(
        "LOAD_IMAGES_DIR", Path(__file__).resolve().parents[2] / "shared/data/blood-cells/images/TEST"
    )
)
LINK = {
    "patient": re.compile(r'href="/patients/(\d+)/"'),
    "slide": re.compile(r'href="/slides/(\d+)/"'),
    "review": re.compile(r'href="/review/slides/(\d+)/'),
}
REVIEW_DATA = re.compile(r'<script id="review-data" type="application/json">(.*?)</script>', re.S)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CLASSES = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
# Which page a virtual user opens next: made-up behaviour, not security.
chance = random.Random()  # noqa: S311


def _cell_images() -> list[tuple[str, bytes]]:
    """Small real cells when the shared data set is there, else drawn ones (a purple nucleus)."""
    paths = sorted(IMAGES_DIR.glob("*/*.jp*g"))[::25][:60] if IMAGES_DIR.is_dir() else []
    if paths:
        return [(path.name, path.read_bytes()) for path in paths]
    images = []
    for index in range(60):
        image = Image.new("RGB", (96, 96), (236, 220, 226))
        image.paste((110 + index, 40, 160), (30, 28, 66 + index % 10, 70))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append((f"drawn-{index}.png", buffer.getvalue()))
    return images


CELL_IMAGES = _cell_images()


class LabUser(HttpUser):
    abstract = True
    username = ""
    wait_time = between(1, 4)

    def on_start(self) -> None:
        page = self.client.get("/accounts/login/", name="/accounts/login/")
        self.client.post(
            "/accounts/login/",
            {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": _csrf(page.text)},
            name="/accounts/login/ (POST)",
        )
        self.patients: list[str] = []
        self.slides: list[str] = []

    def page(self, url: str, name: str) -> str:
        with self.client.get(url, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} on {url}")
            elif "/accounts/login/" in response.url:
                response.failure(f"sent to the login page from {url}")
            return response.text or ""

    def post(self, url: str, name: str, data: dict, **kwargs) -> str:  # noqa: ANN003
        data = {**data, "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")}
        with self.client.post(url, data=data, name=name, catch_response=True, **kwargs) as response:
            if response.status_code >= 400:
                response.failure(f"{response.status_code} on {url}: {response.text[:200]}")
            return response.text or ""

    def browse_slides(self) -> None:
        text = self.page(f"/slides/?page={chance.randint(1, 4)}", "/slides/?page=[n]")
        self.slides = LINK["slide"].findall(text) or self.slides
        if self.slides:
            self.page(f"/slides/{chance.choice(self.slides)}/", "/slides/[id]/")


class LabStaff(LabUser):
    """Finds patients and slides, creates a slide, uploads a few cells and submits it."""

    weight = 2
    username = "load-labstaff"

    @task(3)
    def browse_patients(self) -> None:
        self.page("/", "/")
        text = self.page(f"/patients/?page={chance.randint(1, 2)}", "/patients/?page=[n]")
        self.patients = LINK["patient"].findall(text) or self.patients
        self.page("/patients/?q=Scale00", "/patients/?q=[term]")
        if self.patients:
            self.page(f"/patients/{chance.choice(self.patients)}/", "/patients/[id]/")

    @task(4)
    def browse(self) -> None:
        self.page("/slides/?status=in_review", "/slides/?status=[status]")
        self.browse_slides()

    @task(1)
    def upload_and_submit(self) -> None:
        if not self.patients:
            self.browse_patients()
            return
        patient = chance.choice(self.patients)
        self.page(f"/patients/{patient}/slides/new/", "/patients/[id]/slides/new/")
        collected = (datetime.now(tz=UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        slide_form = {
            "accession_number": f"LT-{uuid.uuid4().hex[:12]}",
            "collected_at": collected,
            "stain": "wright_giemsa",
        }
        with self.client.post(
            f"/patients/{patient}/slides/new/",
            data={**slide_form, "notes": "", "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")},
            name="/patients/[id]/slides/new/ (POST)",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"slide not created: {response.status_code}")
                return
            slide = response.headers["Location"].rstrip("/").split("/")[-1]
        self.page(f"/slides/{slide}/upload/", "/slides/[id]/upload/")
        files = [("files", (name, data, "image/jpeg")) for name, data in chance.sample(CELL_IMAGES, 4)]
        self.post(f"/slides/{slide}/upload/", "/slides/[id]/upload/ (POST, 4 cells)", {}, files=files)
        self.post(f"/slides/{slide}/submit/", "/slides/[id]/submit/ (POST)", {})
        self.page(f"/slides/{slide}/", "/slides/[id]/")


class Pathologist(LabUser):
    """Works the review queue: opens a slide's review screen and records a run of reviews."""

    weight = 2
    username = "load-pathologist"

    @task(3)
    def queue(self) -> None:
        filters = chance.choice(
            ("", "?reviewed=no", "?band=flagged&reviewed=no", f"?page={chance.randint(2, 20)}")
        )
        text = self.page(f"/review/{filters}", "/review/?[filters]")
        self.slides = LINK["review"].findall(text) or self.slides

    @task(5)
    def review_cells(self) -> None:
        if not self.slides:
            self.queue()
            return
        slide = chance.choice(self.slides)
        text = self.page(f"/review/slides/{slide}/", "/review/slides/[id]/")
        match = REVIEW_DATA.search(text)
        if not match:
            return
        data = json.loads(match.group(1))
        cells = [cell for cell in data["cells"] if cell["review"] is None and not cell.get("excluded")]
        token = _csrf(text)
        for cell in cells[: chance.randint(3, 10)]:
            label, reason = cell["label"], ""
            if chance.random() < 0.1:
                label, reason = chance.choice([c for c in CLASSES if c != cell["label"]]), "Nuclear shape"
            with self.client.post(
                cell["review_url"],
                data={"label": label, "reason": reason, "csrfmiddlewaretoken": token},
                headers={"Accept": "application/json"},
                name="/review/predictions/[id]/ (POST)",
                catch_response=True,
            ) as response:
                # 400 is the app refusing a review (e.g. the slide was signed meanwhile), not an error.
                if response.status_code >= 500 or response.status_code not in (200, 400):
                    response.failure(f"{response.status_code}: {response.text[:200]}")
                else:
                    response.success()
        self.page(f"/review/slides/{slide}/differential/", "/review/slides/[id]/differential/")

    @task(1)
    def slide_page(self) -> None:
        self.browse_slides()


class Exporter(LabUser):
    """A pathologist downloading results and reading the audit trail."""

    weight = 1
    username = "load-pathologist"

    @task(3)
    def slide_exports(self) -> None:
        if not self.slides:
            self.browse_slides()
            return
        slide = chance.choice(self.slides)
        self.page(f"/review/slides/{slide}/export/?as=csv", "/review/slides/[id]/export/?as=csv")
        self.page(f"/api/exports/slides/{slide}/?as=json", "/api/exports/slides/[id]/?as=json")

    @task(1)
    def range_export(self) -> None:
        today = datetime.now(tz=UTC).date()
        query = f"collected_from={today - timedelta(days=6)}&collected_to={today}"
        self.page(f"/review/exports/?{query}&export_format=csv", "/review/exports/?[last week, CSV]")

    @task(1)
    def patient_export(self) -> None:
        text = self.page(f"/patients/?page={chance.randint(1, 2)}", "/patients/?page=[n]")
        patients = LINK["patient"].findall(text)
        if patients:
            self.page(
                f"/review/patients/{chance.choice(patients)}/export/?as=json",
                "/review/patients/[id]/export/?as=json",
            )

    @task(1)
    def audit(self) -> None:
        self.page("/audit/", "/audit/")
        self.page("/audit/?action=review.recorded", "/audit/?action=[action]")


def _csrf(html: str) -> str:
    match = CSRF_INPUT.search(html)
    return match.group(1) if match else ""
