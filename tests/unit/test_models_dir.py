"""Tests of finding the models folder: ``[daemon] models_dir`` or the shipped one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_gate._models import MANIFEST_NAME, find_models_dir
from edge_gate.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        pytest.param("absent", "the folder does not exist", id="missing-folder"),
        pytest.param("file", "it is not a folder", id="file-not-folder"),
        pytest.param("empty", "contains no manifest.json", id="no-manifest"),
    ],
)
def test_configured_folder_without_manifest(
    tmp_path: Path, name: str, problem: str
) -> None:
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    configured = str(tmp_path / name)
    with pytest.raises(ConfigError) as caught:
        find_models_dir(configured)
    message = str(caught.value)
    assert message.startswith(f'[daemon] models_dir = "{configured}": ')
    assert problem in message
    assert "remove the setting to use the installed models" in message


def test_configured_folder_with_manifest(tmp_path: Path) -> None:
    shutil.copy(REPO / "models" / MANIFEST_NAME, tmp_path / MANIFEST_NAME)
    assert find_models_dir(str(tmp_path)) == tmp_path


def test_no_setting_finds_shipped_models() -> None:
    assert (find_models_dir() / MANIFEST_NAME).is_file()
