"""p50/p95 latency of every page that grows with the data, with 10,000 seeded cells, in a database
of its own (created here, dropped afterwards unless --keep)."""

import json
import math
import time
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client

from accounts.roles import Role
from cases.models import Patient
from classifier.models import ModelVersion
from devtools.scale_pages import PAGES, PageCase, scale_users
from devtools.scale_seed import ScaleDataset, SeedPlan, scale_dataset_create, scale_dataset_load

TARGET_P95_MS = 150.0
PREFIX = "BENCH"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class Command(BaseCommand):
    help = (
        "Seed 10,000 cells (slides in every status, predictions, reviews, signatures, audit events) "
        "into a throwaway database and print p50/p95 per page through the Django test client."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--cells", type=int, default=10_000)
        parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
        parser.add_argument("--json", dest="json_path", type=Path, help="also write the results to this file")
        parser.add_argument(
            "--keep", action="store_true", help="keep the database (and reuse it on the next run)"
        )
        parser.add_argument("--page", action="append", default=[], help="only pages whose name contains this")

    def handle(
        self, *args, cells: int, requests: int, json_path: Path | None, keep: bool, page: list, **options
    ) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Point DATABASE_URL at PostgreSQL: the figures are for production's engine.")
        # Pages link hashed static names, as in production (the same step as `make run`).
        call_command("collectstatic", interactive=False, verbosity=0)
        original_name = connection.settings_dict["NAME"]
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{original_name}_bench_pages"
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=keep)
        try:
            dataset = self._dataset(cells)
            pages = [case for case in PAGES if not page or any(part in case.name for part in page)]
            results = [self._measure(case, dataset, requests) for case in pages]
        finally:
            connection.creation.destroy_test_db(original_name, verbosity=0, keepdb=keep)
        self._report(results, cells, requests, json_path)

    def _dataset(self, cells: int) -> ScaleDataset:
        users = scale_users()
        if Patient.objects.filter(mrn__startswith=f"{PREFIX}-").exists():
            self.stdout.write("Reusing the seeded database (--keep).")
            return scale_dataset_load(prefix=PREFIX)
        model_version, _ = ModelVersion.objects.get_or_create(
            name="bench-pages",
            defaults={
                "directory": "bench-pages",
                "sha256": "0" * 64,
                "file_hashes": {},
                "review_threshold": 0.9,
            },
        )
        started = time.perf_counter()
        dataset = scale_dataset_create(
            plan=SeedPlan(prefix=PREFIX, cells=cells),
            lab_staff=users[Role.LAB_STAFF],
            pathologist=users[Role.PATHOLOGIST],
            model_version=model_version,
        )
        self.stdout.write(
            f"Seeded {dataset.cells} cells, {dataset.predictions} predictions, {dataset.reviews} reviews "
            f"on {len(dataset.slides)} slides in {time.perf_counter() - started:.1f} s."
        )
        return dataset

    def _measure(self, case: PageCase, dataset: ScaleDataset, requests: int) -> dict:
        client = Client(SERVER_NAME="localhost")
        client.force_login(scale_users()[case.role])
        url = case.url(dataset)
        queries = _QueryCounter()
        with connection.execute_wrapper(queries):
            status, size = _get(client, url)  # warm-up, and the query count
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            _get(client, url)
            timings.append(1000 * (time.perf_counter() - started))
        return {
            "page": case.name,
            "url": url,
            "export": case.export,
            "status": status,
            "bytes": size,
            "queries": queries.count,
            "p50_ms": round(percentile(timings, 0.50), 1),
            "p95_ms": round(percentile(timings, 0.95), 1),
            "max_ms": round(max(timings), 1),
        }

    def _report(self, results: list[dict], cells: int, requests: int, json_path: Path | None) -> None:
        self.stdout.write(f"{'page':<40} {'status':>6} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8}  url")
        for row in results:
            late = "" if row["export"] or row["p95_ms"] <= TARGET_P95_MS else "  > target"
            self.stdout.write(
                f"{row['page']:<40} {row['status']:>6} {row['queries']:>7} {row['p50_ms']:>8.1f} "
                f"{row['p95_ms']:>8.1f}  {row['url']}{late}"
            )
        pages = [row for row in results if not row["export"]]
        missed = [row["page"] for row in pages if row["p95_ms"] > TARGET_P95_MS]
        self.stdout.write(
            f"{len(pages) - len(missed)} of {len(pages)} pages at p95 ≤ {TARGET_P95_MS:.0f} ms "
            f"with {cells} cells "
            f"({requests} requests each, Django test client, PostgreSQL)."
            + (f" Missed: {', '.join(missed)}." if missed else "")
        )
        if json_path:
            document = {
                "cells": cells,
                "requests_per_page": requests,
                "target_p95_ms": TARGET_P95_MS,
                "pages": results,
            }
            json_path.write_text(json.dumps(document, indent=2))


class _QueryCounter:
    """Counts every query the connection runs (the debug query log is emptied by each request)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001, ANN204
        self.count += 1
        return execute(sql, params, many, context)


def _get(client: Client, url: str) -> tuple[int, int]:
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, len(body)
