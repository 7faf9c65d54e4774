"""Registered uploads: copied under STUDIO_HOME with a manifest, listed, loaded, removed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from core.config import get_settings
from core.data import (
    describe_dataset,
    list_datasets,
    load_dataset,
    register_upload,
    remove_upload,
)
from core.errors import DataError, NotFoundError
from tests.core.data.conftest import snapshot, write_csv, write_image_folder


def pets_csv(path: Path) -> Path:
    rows = [[i, (i * 3) % 7, ["cat", "dog"][i % 2]] for i in range(30)]
    return write_csv(path, ["a", "b", "species"], rows)


def test_register_csv_copies_writes_manifest_and_lists(tmp_path: Path) -> None:
    source = pets_csv(tmp_path / "My Pets.csv")
    info = register_upload("csv", source, label="species")
    assert info.name == "my-pets" and info.source == "upload"
    assert info.sample_shape == (2,) and info.num_classes == 2
    folder = get_settings().uploads_dir / "my-pets"
    assert (folder / "data" / "My Pets.csv").read_bytes() == source.read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "csv" and manifest["options"]["label"] == "species"
    assert manifest["original_filename"] == "My Pets.csv"
    assert manifest["size_bytes"] == source.stat().st_size and manifest["created_at"]
    assert snapshot(get_settings().uploads_dir) == {
        "my-pets", "my-pets/data", "my-pets/data/My Pets.csv", "my-pets/manifest.json"
    }  # fmt: skip
    assert "my-pets" in [i.name for i in list_datasets()]
    assert describe_dataset("my-pets") == info
    source.unlink()  # the copy is what loads from now on
    dataset = load_dataset("my-pets")
    assert dataset.name == "my-pets" and dataset.sizes == info.sizes


def test_registered_name_loads_like_the_path(tmp_path: Path) -> None:
    source = pets_csv(tmp_path / "pets.csv")
    register_upload("csv", source, name="pets")
    by_name, by_path = load_dataset("pets", seed=4), load_dataset(f"csv:{source}", seed=4)
    assert torch.equal(by_name.train.x, by_path.train.x)
    assert torch.equal(by_name.val.indices, by_path.val.indices)


def test_names_are_checked_and_defaults_made_unique(tmp_path: Path) -> None:
    source = pets_csv(tmp_path / "pets.csv")
    assert register_upload("csv", source).name == "pets"
    assert register_upload("csv", source).name == "pets-2"
    with pytest.raises(DataError, match=r"a dataset named 'pets' already exists"):
        register_upload("csv", source, name="pets")
    with pytest.raises(DataError, match=r"a dataset named 'digits' already exists"):
        register_upload("csv", source, name="digits")
    for bad in ("../evil", "Has Space", "", "a" * 65):
        with pytest.raises(DataError, match=r"dataset name .* is not allowed"):
            register_upload("csv", source, name=bad)
    with pytest.raises(DataError, match=r"unknown upload kind 'tsv'; use one of csv, images, text"):
        register_upload("tsv", source)
    assert sorted(p.name for p in get_settings().uploads_dir.iterdir()) == ["pets", "pets-2"]


def test_register_zip_extracts_into_its_own_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "animals", {"cat": 4, "dog": 4})
    archive = tmp_path / "animals.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, "animals/" + path.relative_to(root).as_posix())
    info = register_upload("images", archive, size=8, channels=3)
    assert info.sample_shape == (3, 8, 8) and info.class_names == ["cat", "dog"]
    data = get_settings().uploads_dir / "animals" / "data"
    assert (data / "animals" / "cat" / "0.png").is_file()
    assert load_dataset("animals").sample_shape == (3, 8, 8)


def test_register_folder_and_text(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "shapes", {"round": 3, "square": 3})
    assert register_upload("images", root, name="shapes", size=6).sample_shape == (3, 6, 6)
    rows = [[f"some words {i}", ["yes", "no"][i % 2]] for i in range(20)]
    text = write_csv(tmp_path / "answers.csv", ["text", "label"], rows)
    info = register_upload("text", text, max_length=5)
    assert info.modality == "text" and info.sample_shape == (5,) and info.vocab_size
    assert load_dataset("answers").vocabulary is not None


def test_remove_upload(tmp_path: Path) -> None:
    register_upload("csv", pets_csv(tmp_path / "pets.csv"))
    remove_upload("pets")
    assert "pets" not in [i.name for i in list_datasets()]
    assert not (get_settings().uploads_dir / "pets").exists()
    with pytest.raises(NotFoundError, match=r"no registered upload named 'pets'"):
        remove_upload("pets")
    with pytest.raises(DataError, match=r"unknown dataset 'pets'"):
        load_dataset("pets")


def test_failed_copy_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.data import catalog

    def broken(folder: Path, record: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(catalog, "write_manifest", broken)
    with pytest.raises(DataError, match=r"could not store upload 'pets' .*disk full"):
        register_upload("csv", pets_csv(tmp_path / "pets.csv"))
    assert snapshot(get_settings().uploads_dir) == set()


def test_builtins_listed_first() -> None:
    names = [i.name for i in list_datasets()]
    assert names[:5] == ["digits", "mnist1d", "mnist", "fashion-mnist", "cifar10"]


def _dataset_rows() -> dict[str, str]:
    from core.store import repository
    from core.store.db import session_scope

    with session_scope(readonly=True) as session:
        return {r.name: r.kind for r in repository.list_dataset_records(session=session)}


def test_registration_is_described_in_the_database_and_removal_deletes_it(tmp_path: Path) -> None:
    register_upload("csv", pets_csv(tmp_path / "pets.csv"), name="pets", label="species")
    assert _dataset_rows() == {"pets": "csv"}
    with pytest.raises(DataError):
        register_upload("csv", write_csv(tmp_path / "one.csv", ["a", "label"], [[1, "x"]] * 5))
    assert _dataset_rows() == {"pets": "csv"}  # a refused upload leaves no row
    remove_upload("pets")
    assert _dataset_rows() == {}


def test_a_folder_registered_before_the_store_is_adopted(tmp_path: Path) -> None:
    register_upload("csv", pets_csv(tmp_path / "pets.csv"), name="pets", label="species")
    from core.store import repository
    from core.store.db import session_scope

    with session_scope() as session:  # as if the folder came from a machine without the store
        repository.delete_dataset_record(session=session, name="pets")
    assert "pets" in [i.name for i in list_datasets()]
    assert _dataset_rows() == {"pets": "csv"}
    assert load_dataset("pets").num_classes == 2
