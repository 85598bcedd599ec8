"""Summary of a load run: Locust's statistics plus the server's own count of 5xx answers.

python devtools/loadtest/summary.py RUN_DIR   (reads locust_stats.csv and access.log, writes summary.json)
"""

import csv
import json
import re
import sys
from pathlib import Path

# gunicorn's default access log: ... "GET /path HTTP/1.1" 200 1234 ...
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) ')


def server_errors(access_log: Path) -> list[str]:
    lines = access_log.read_text(errors="replace").splitlines() if access_log.exists() else []
    return [line for line in lines if (match := ACCESS_LINE.search(line)) and match["status"].startswith("5")]


def main(run_dir: Path) -> int:
    with (run_dir / "locust_stats.csv").open() as stats_file:
        rows = list(csv.DictReader(stats_file))
    total = next(row for row in rows if row["Name"] == "Aggregated")
    pages = [row for row in rows if row["Name"] != "Aggregated"]
    errors = server_errors(run_dir / "access.log")
    print(f"{'request':<58} {'count':>7} {'fail':>5} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for row in sorted(pages, key=lambda row: -float(row["95%"] or 0)):
        name = f"{row['Type']} {row['Name']}"[:58]
        print(
            f"{name:<58} {row['Request Count']:>7} {row['Failure Count']:>5} {row['50%']:>7} {row['95%']:>7} "
            f"{float(row['Max Response Time']):>7.0f}"
        )
    summary = {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "server_errors_5xx": len(errors),
        "requests_per_second": round(float(total["Requests/s"]), 2),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "p95_ms_per_request": {f"{row['Type']} {row['Name']}": float(row["95%"]) for row in pages},
    }
    print(
        f"Total: {summary['requests']} requests, {summary['failures']} failures, "
        f"{summary['server_errors_5xx']} server errors (5xx in the access log), "
        f"{summary['requests_per_second']} requests/s, "
        f"p50 {summary['p50_ms']:.0f} ms, p95 {summary['p95_ms']:.0f} ms."
    )
    for line in errors[:20]:
        print(f"  5xx: {line}")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return 1 if errors or summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
