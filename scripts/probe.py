"""Exit 0 when the service at a URL answers, 1 otherwise: `probe.py postgres|redis URL`;
`probe.py ready URL SECONDS` waits up to SECONDS for the app's /ready/ to answer 200 and prints
what is still not ready when it gives up."""

import json
import sys
import time
import urllib.error
import urllib.request


def postgres_answers(url: str) -> bool:
    import psycopg

    try:
        # The maintenance database: the project's own may not have been created yet.
        with psycopg.connect(url, dbname="postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except (redis.RedisError, ValueError):
        return False


def _readiness(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (our own http URL)
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except (OSError, ValueError):
        return 0, {"problems": {"web": "not answering yet"}}


def app_ready(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        status, body = _readiness(url)
        if status == 200:
            return True
        if time.monotonic() > deadline:
            problems = "; ".join(f"{name}: {problem}" for name, problem in body.get("problems", {}).items())
            print(f"Not ready after {seconds:g} s: {problems or status}", file=sys.stderr)
            return False
        time.sleep(1)


if __name__ == "__main__":
    kind, url = sys.argv[1], sys.argv[2]
    if kind == "ready":
        sys.exit(0 if app_ready(url, float(sys.argv[3])) else 1)
    answers = postgres_answers(url) if kind == "postgres" else redis_answers(url)
    sys.exit(0 if answers else 1)
