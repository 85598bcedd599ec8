"""The pages and API lists whose content grows with the data, each with the role that opens it and
its URL in a seeded dataset. Shared by the query-count tests (tests/proof/scale) and
``manage.py bench_pages``, so both always look at the same set."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from cases.models import SlideStatus
from devtools.scale_seed import ScaleDataset

LAB_STAFF, PATHOLOGIST, ADMIN = Role.LAB_STAFF, Role.PATHOLOGIST, Role.ADMIN


@dataclass(frozen=True)
class PageCase:
    name: str
    role: Role
    url: Callable[[ScaleDataset], str]
    # Downloads rather than pages: reported apart from the page-latency target.
    export: bool = False


def _slide(status: SlideStatus, view: str) -> Callable[[ScaleDataset], str]:
    return lambda dataset: reverse(view, args=[dataset.slide_in(status).pk])


def _patient(view: str, query: str = "") -> Callable[[ScaleDataset], str]:
    return lambda dataset: reverse(view, args=[dataset.slide_in(SlideStatus.IN_REVIEW).patient_id]) + query


def _fixed(path: str) -> Callable[[ScaleDataset], str]:
    return lambda dataset: path


def _queue_for_slide(dataset: ScaleDataset) -> str:
    return f"{reverse('review:queue')}?slide={dataset.slide_in(SlideStatus.IN_REVIEW).pk}"


def _last_week(view: str) -> Callable[[ScaleDataset], str]:
    """The slides collected in the dataset's last seven days (one slide a day)."""

    def url(dataset: ScaleDataset) -> str:
        start = dataset.last_collected - timedelta(days=6)
        fmt = "export_format" if view == "review:range_export" else "as"
        return f"{reverse(view)}?collected_from={start}&collected_to={dataset.last_collected}&{fmt}=json"

    return url


PAGES: tuple[PageCase, ...] = (
    PageCase("home", LAB_STAFF, _fixed("/")),
    PageCase("patient list", LAB_STAFF, _fixed("/patients/")),
    PageCase("patient list, search", LAB_STAFF, _fixed("/patients/?q=Scale")),
    PageCase("patient detail", LAB_STAFF, _patient("cases:patient_detail")),
    PageCase("slide list", LAB_STAFF, _fixed("/slides/")),
    PageCase("slide list, in review, page 2", LAB_STAFF, _fixed("/slides/?status=in_review&page=2")),
    PageCase("slide detail", PATHOLOGIST, _slide(SlideStatus.IN_REVIEW, "cases:slide_detail")),
    PageCase("slide detail, signed", LAB_STAFF, _slide(SlideStatus.SIGNED, "cases:slide_detail")),
    PageCase("review queue", PATHOLOGIST, _fixed("/review/")),
    PageCase(
        "review queue, flagged and unreviewed", PATHOLOGIST, _fixed("/review/?band=flagged&reviewed=no")
    ),
    PageCase("review queue, page 3", PATHOLOGIST, _fixed("/review/?page=3")),
    PageCase("review queue, one slide", PATHOLOGIST, _queue_for_slide),
    PageCase("review screen", PATHOLOGIST, _slide(SlideStatus.IN_REVIEW, "review:slide_review")),
    PageCase("differential", PATHOLOGIST, _slide(SlideStatus.IN_REVIEW, "review:slide_differential")),
    PageCase("sign page", PATHOLOGIST, _slide(SlideStatus.SIGNED, "review:slide_sign")),
    PageCase("amend page", PATHOLOGIST, _slide(SlideStatus.SIGNED, "review:slide_amend")),
    PageCase("home, pathologist", PATHOLOGIST, _fixed("/")),
    PageCase("worklist", PATHOLOGIST, _fixed("/review/worklist/")),
    PageCase("worklist, by sample age", PATHOLOGIST, _fixed("/review/worklist/?sort=-age")),
    PageCase("report", LAB_STAFF, _slide(SlideStatus.SIGNED, "review:slide_report")),
    PageCase("sign page, in review", PATHOLOGIST, _slide(SlideStatus.IN_REVIEW, "review:slide_sign")),
    PageCase("audit trail", PATHOLOGIST, _fixed("/audit/")),
    PageCase("audit trail, reviews", PATHOLOGIST, _fixed("/audit/?action=review.recorded&page=2")),
    PageCase("model versions", ADMIN, _fixed("/models/")),
    PageCase("user list", ADMIN, _fixed("/accounts/users/")),
    PageCase("API patients", LAB_STAFF, _fixed("/api/patients/")),
    PageCase("API slides", LAB_STAFF, _fixed("/api/slides/?status=in_review")),
    PageCase("API slide cell images", LAB_STAFF, _slide(SlideStatus.IN_REVIEW, "api:slide-cell-images")),
    PageCase("API cell images", LAB_STAFF, _fixed("/api/cell-images/")),
    PageCase(
        "API slide predictions", LAB_STAFF, _slide(SlideStatus.IN_REVIEW, "api:slide-inference-predictions")
    ),
    PageCase("API inference jobs", LAB_STAFF, _fixed("/api/inference-jobs/")),
    PageCase("API audit events", PATHOLOGIST, _fixed("/api/audit-events/")),
    PageCase("API model versions", ADMIN, _fixed("/api/model-versions/")),
    PageCase("API users", ADMIN, _fixed("/api/users/")),
    PageCase(
        "export slide CSV",
        PATHOLOGIST,
        lambda d: reverse("review:slide_export", args=[d.slide_in(SlideStatus.IN_REVIEW).pk]) + "?as=csv",
        export=True,
    ),
    PageCase(
        "export slide FHIR",
        PATHOLOGIST,
        lambda d: reverse("review:slide_export", args=[d.slide_in(SlideStatus.SIGNED).pk]) + "?as=fhir",
        export=True,
    ),
    PageCase("report PDF", LAB_STAFF, _slide(SlideStatus.SIGNED, "review:slide_report_pdf"), export=True),
    PageCase("export patient JSON", PATHOLOGIST, _patient("review:patient_export", "?as=json"), export=True),
    PageCase("export last week JSON", PATHOLOGIST, _last_week("review:range_export"), export=True),
    PageCase("API export last week", PATHOLOGIST, _last_week("api:export-range"), export=True),
    PageCase("audit CSV", PATHOLOGIST, _fixed("/audit/export.csv?action=slide.signed"), export=True),
)


def scale_users() -> dict[Role, User]:
    """One user per role for the seeded data (created once, reused)."""
    users = {}
    for role in Role:
        user, created = User.objects.get_or_create(
            username=f"scale-{role.value.lower()}",
            defaults={"first_name": "Scale", "last_name": role.label},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.set([Group.objects.get(name=role.value)])
        users[role] = user
    return users
