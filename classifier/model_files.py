"""Reading a registered model's own files for people (card, evaluation, figures), never anything else.

A file is read only if it was recorded at registration (``ModelVersion.file_hashes``), lies directly
in the model's directory (no sub-folders, no link leading out of it) and still has the sha256
recorded then: the Models page shows what was registered or says why it cannot.
"""

import hashlib
import json
import re

from classifier.adapter import model_directory_resolve
from classifier.models import ModelVersion

CARD_FILE = "model_card.json"
EVALUATION_FILE = "evaluation.json"
# The figures ml.finalise writes. SVG is left out on purpose: it can carry scripts.
IMAGE_CONTENT_TYPES = {".png": "image/png"}
# A plain file name: no separators, no "..", no leading dot.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Cards, evaluations and figures are a few hundred KB at most; weights are never read here.
MAX_FILE_BYTES = 16 * 1024 * 1024


class RegisteredFileError(Exception):
    """A file that is not one of the registered files, or that cannot be read as registered."""


class RegisteredFileMissing(RegisteredFileError):
    """Not a registered file of this version, or absent from its directory on this machine."""


class RegisteredFileChanged(RegisteredFileError):
    """Present, but its sha256 is no longer the one recorded at registration."""


def registered_file_read(model_version: ModelVersion, name: str) -> bytes:
    """The bytes of ``name`` exactly as registered, or a RegisteredFileError that says why not."""
    file_hashes = model_version.file_hashes if isinstance(model_version.file_hashes, dict) else {}
    expected = file_hashes.get(name)
    if expected is None or not _PLAIN_NAME.fullmatch(name) or ".." in name:
        raise RegisteredFileMissing(f"{name} is not one of the files registered for {model_version.name}.")
    directory = model_directory_resolve(model_version.directory).resolve()
    path = (directory / name).resolve()
    if path.parent != directory:
        raise RegisteredFileMissing(f"{name} of {model_version.name} leads out of its model directory.")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RegisteredFileMissing(f"{name} of {model_version.name} is too large to show.")
        data = path.read_bytes()
    except OSError as error:
        raise RegisteredFileMissing(
            f"{name} of {model_version.name} cannot be read on this server ({type(error).__name__})."
        ) from error
    if hashlib.sha256(data).hexdigest() != expected:
        raise RegisteredFileChanged(
            f"{name} of {model_version.name} has changed since registration (sha256 mismatch)."
        )
    return data


def registered_json_read(model_version: ModelVersion, name: str) -> dict:
    """A registered JSON file as a dict; RegisteredFileError also when it is not a JSON object."""
    data = registered_file_read(model_version, name)
    try:
        value = json.loads(data)
    except ValueError as error:
        raise RegisteredFileMissing(f"{name} of {model_version.name} is not valid JSON.") from error
    if not isinstance(value, dict):
        raise RegisteredFileMissing(f"{name} of {model_version.name} is not a JSON object.")
    return value


def registered_images(model_version: ModelVersion) -> list[str]:
    """The names of the registered files the image view may serve, sorted."""
    file_hashes = model_version.file_hashes if isinstance(model_version.file_hashes, dict) else {}
    return sorted(name for name in file_hashes if image_content_type(name))


def image_content_type(name: str) -> str | None:
    """The content type the image view serves ``name`` as; None when it serves no such file."""
    if not _PLAIN_NAME.fullmatch(name) or ".." in name:
        return None
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return IMAGE_CONTENT_TYPES.get(suffix)
