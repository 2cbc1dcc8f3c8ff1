"""TFDS's real builder and loader path, offline: the GLUE builder downloads (from a local zip, through TFDS's
own DownloadManager), extracts, prepares and loads CoLA, and the task reads it exactly as it reads the same
rows from local files. `tfds.testing.mock_data` skips all of that, which is how a module TFDS imports lazily
on that path (importlib_resources) went missing from the install unnoticed."""

from __future__ import annotations

import importlib
import zipfile

import pytest
import tensorflow_datasets as tfds
from etils.epy.lazy_imports_utils import LazyModule

from t5explore.data.tasks import get_task
from t5explore.data.tasks.base import TaskDataError
from t5explore.data.tasks.tfds_source import tfds_failure_message

ROWS = 12
# TFDS modules on the build/download/load path; their lazily imported third-party modules must be installed.
TFDS_PATH_MODULES = [
    "tensorflow_datasets.core.dataset_builder",
    "tensorflow_datasets.core.dataset_info",
    "tensorflow_datasets.core.file_adapters",
    "tensorflow_datasets.core.split_builder",
    "tensorflow_datasets.core.writer",
    "tensorflow_datasets.core.download.download_manager",
    "tensorflow_datasets.core.download.downloader",
    "tensorflow_datasets.core.download.extractor",
]
OPTIONAL = {"apache_beam"}  # only Beam-built datasets need it; GLUE, SuperGLUE and SQuAD do not


def test_every_module_tfds_imports_lazily_on_the_download_path_is_installed():
    missing = []
    for name in TFDS_PATH_MODULES:
        for attr, lazy in vars(importlib.import_module(name)).items():
            top = lazy.module_name.split(".")[0] if isinstance(lazy, LazyModule) else None
            if top is None or top == "tensorflow_datasets" or top in OPTIONAL:
                continue
            try:
                importlib.import_module(lazy.module_name)
            except ImportError as e:
                missing.append(f"{name}.{attr} -> {lazy.module_name}: {e}")
    assert not missing


def _cola_zip(tmp_path, shared_data):
    """GLUE's CoLA.zip layout (CoLA/{train,dev,test}.tsv) holding the first ROWS real rows of each split."""
    path = tmp_path / "CoLA.zip"
    with zipfile.ZipFile(path, "w") as z:
        for split in ("train", "dev"):
            lines = (shared_data / "glue" / "CoLA" / f"{split}.tsv").read_text().splitlines(keepends=True)
            z.writestr(f"CoLA/{split}.tsv", "".join(lines[:ROWS]))
        z.writestr("CoLA/test.tsv", "index\tsentence\n0\tThe test split is not read.\n")
    return path


def test_glue_builds_downloads_and_loads_through_tfds(tmp_path, shared_data, monkeypatch):
    """tfds.load(download=True) on the real glue/cola builder; only the URL is swapped for a local zip."""
    from tensorflow_datasets.core import constants
    from tensorflow_datasets.core.download import download_manager

    archive = _cola_zip(tmp_path, shared_data)
    real = download_manager.DownloadManager.download_and_extract
    urls = []

    def local_copy(self, url_or_urls):
        urls.append(url_or_urls)
        return real(self, str(archive))  # TFDS still copies, checksums and extracts it itself

    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    monkeypatch.setattr(download_manager.DownloadManager, "download_and_extract", local_copy)
    task = get_task("glue_cola")
    via_tfds = {split: task.examples(split) for split in ("train", "validation")}
    assert urls and all("CoLA" in str(u) for u in urls)  # the GLUE builder's own URL was asked for
    assert (tmp_path / "tensorflow_datasets" / "glue" / "cola").is_dir()
    local = {split: task.examples(split, data_dir=shared_data)[:ROWS] for split in ("train", "validation")}
    for split in via_tfds:
        assert len(via_tfds[split]) == ROWS
        key = lambda e: e.inputs  # noqa: E731  (TFDS shuffles records when it writes them)
        assert [(e.inputs, e.targets) for e in sorted(via_tfds[split], key=key)] == [
            (e.inputs, e.targets) for e in sorted(local[split], key=key)
        ]


def test_a_missing_module_is_named_without_suggesting_data_dir(monkeypatch):
    def load(*args, **kwargs):
        try:
            import importlib_resources_not_installed  # noqa: F401
        except ImportError as e:
            raise ImportError(f"Error importing importlib_resources_not_installed: {e!r}") from e

    monkeypatch.setattr(tfds, "load", load)
    with pytest.raises(TaskDataError) as info:
        get_task("glue_cola").examples("train")
    message = str(info.value)
    assert "'glue/cola'" in message and "'importlib_resources_not_installed'" in message
    assert "not installed" in message and "data_dir" not in message


def test_no_network_is_named_as_the_cause():
    import requests

    try:
        try:
            raise requests.exceptions.ConnectionError("Failed to resolve 'dl.fbaipublicfiles.com'")
        except requests.exceptions.ConnectionError as e:
            raise RuntimeError("Failed to get url https://dl.fbaipublicfiles.com/glue/data/CoLA.zip") from e
    except RuntimeError as e:
        message = tfds_failure_message("glue/cola", "train", e)
    assert "network" in message and "ConnectionError" in message and "data_dir" in message
    assert "not installed" not in message
