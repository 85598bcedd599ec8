"""The one place that reads the process environment.

Settings modules ask for values through ``env``; nothing else in the code base reads
``os.environ``. Production asks with ``required=True`` so a missing variable stops start-up with
a message that names it, instead of silently falling back to a development default.
"""

import json
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Environment:
    def __init__(self, source: dict[str, str] | None = None) -> None:
        self._source = os.environ if source is None else source

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._source.get(name)
        if value not in (None, ""):
            return value
        if required or default is None:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default

    def flag(self, name: str, default: bool) -> bool:
        value = self._source.get(name)
        if value in (None, ""):
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        # Strict on purpose: "Flase" must not quietly mean False in a clinical deployment.
        raise ImproperlyConfigured(f"{name} must be one of {sorted(_TRUE | _FALSE)}, not {value!r}.")

    def integer(self, name: str, default: int) -> int:
        value = self._source.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError as error:
            raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from error

    def items(self, name: str, default: list[str] | None = None, *, required: bool = False) -> list[str]:
        joined = self.text(name, None if default is None else ",".join(default), required=required)
        return [item.strip() for item in joined.split(",") if item.strip()]

    def json_object(self, name: str) -> dict:
        """A JSON object (``{}`` when unset or empty); anything else stops start-up."""
        raw = self.text(name, "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as error:
            raise ImproperlyConfigured(f"{name} must be a JSON object: {error}.") from error
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"{name} must be a JSON object, not {raw!r}.")
        return value


env = Environment()
