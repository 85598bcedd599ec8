"""Django's door to ``ml.gradcam``: one loaded explainer per model version and worker process.

Only Celery workers call ``explainer_for``; web processes never load a model.
"""

import threading

from classifier.adapter import model_directory_verify
from classifier.models import ModelVersion
from ml.gradcam import GradCamExplainer

_explainers: dict[tuple[int, str], GradCamExplainer] = {}
_explainers_lock = threading.Lock()


def explainer_for(model_version: ModelVersion) -> GradCamExplainer:
    """Loaded once per process, after checking the directory's files are those registered."""
    key = (model_version.pk, model_version.sha256)
    with _explainers_lock:
        if key not in _explainers:
            path = model_directory_verify(
                name=model_version.name,
                directory=model_version.directory,
                expected_hashes=model_version.file_hashes,
            )
            _explainers[key] = GradCamExplainer(path)
        return _explainers[key]


def explainer_cache_clear() -> None:
    with _explainers_lock:
        _explainers.clear()
