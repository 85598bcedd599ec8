from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Benchmarks, scale seeding and the load test; no product app imports it."""

    name = "devtools"
    verbose_name = "Developer tools"
