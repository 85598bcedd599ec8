from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from classifier.models import ModelVersion
from ml.testing import make_tiny_model_dir


def test_register_default_model_registers_and_activates_it(monkeypatch, tiny_model_dir, db):
    monkeypatch.setenv("HEMATOVISION_MODEL_DIR", str(tiny_model_dir))
    output = StringIO()

    call_command("register_default_model", stdout=output)

    assert ModelVersion.objects.get().is_active
    assert output.getvalue().startswith("Model tiny-test (active)")


def test_register_default_model_fails_clearly_when_there_is_none(monkeypatch, tmp_path, db):
    monkeypatch.setenv("HEMATOVISION_MODEL_DIR", str(tmp_path / "absent"))

    with pytest.raises(CommandError, match="No default model directory"):
        call_command("register_default_model")


def test_register_model_activates_a_second_version_on_request(model_version, models_root):
    directory = make_tiny_model_dir(models_root / "second", version="second", seed=3)

    call_command("register_model", str(directory), "--activate", stdout=StringIO())

    assert ModelVersion.objects.get(is_active=True).name == "second"


def test_register_model_refuses_a_directory_without_a_card(models_root, db):
    with pytest.raises(CommandError, match="Cannot read the model card"):
        call_command("register_model", str(models_root))
