"""Exit 0 when the service at a URL answers, 1 otherwise: `probe.py postgres|redis URL`."""

import sys


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


if __name__ == "__main__":
    kind, url = sys.argv[1], sys.argv[2]
    answers = postgres_answers(url) if kind == "postgres" else redis_answers(url)
    sys.exit(0 if answers else 1)
