"""The atlas folder: round trip, atomic writes, and every kind of damage caught with a clear message."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import galexplore
from galexplore.atlas.files import (
    CATALOG,
    EMBEDDINGS,
    MANIFEST,
    NEIGHBORS,
    SCHEMA,
    AtlasError,
    AtlasWriter,
    code_version,
    file_fingerprint,
    open_atlas,
)
from galexplore.cli import main

N, D, K = 6, 4, 3


@pytest.fixture
def catalog() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "object_id": np.arange(100, 100 + N, dtype=np.int64),
        "ra": np.linspace(150.0, 150.5, N),
        "dec": np.linspace(2.0, 2.5, N),
        "type": pd.array(["spiral", "elliptical", "spiral", "irregular", "spiral", "elliptical"], dtype="str"),
        "umap_x": np.array([-1.5, 0.0, 0.5, 2.0, 3.25, 1.0], dtype=np.float32),
        "umap_y": rng.normal(size=N).astype(np.float32),
        "trust": np.array([0.1, np.nan, 0.9, 0.5, 0.4, 0.3], dtype=np.float32),
        "anomaly_score": rng.uniform(size=N),
        "label_availability": pd.Categorical(["none", "spec-z", "none", "none", "spec-z+morphology", "none"]),
    })


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    embeddings = rng.normal(size=(N, D)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    neighbors = np.array([[(i + j) % N for j in range(1, K + 1)] for i in range(N)], dtype=np.int32)
    return {
        EMBEDDINGS: embeddings,
        "embeddings_reduced.npy": embeddings[:, :2].copy(),
        NEIGHBORS: neighbors,
        "similarities.npy": rng.uniform(size=(N, K)).astype(np.float16),
    }


@pytest.fixture
def atlas_dir(tmp_path: Path, catalog: pd.DataFrame, arrays: dict[str, np.ndarray]) -> Path:
    folder = tmp_path / "atlas"
    writer = AtlasWriter(folder, "tiny", provenance={"bands": ("g", "r", "z"), "pixel_scale": np.float64(0.262),
                                                     "config": "[simulate]\nn = 6\n"})
    writer.write_catalog(catalog)
    for name, array in arrays.items():
        writer.write_array(name, array)
    writer.write_npz("pca.npz", mean=np.arange(D, dtype=np.float64), components=np.eye(2, D))
    writer.write_json("probe.json", {"sigma_mad": np.float32(0.02), "missing": float("nan")})
    writer.set_stage("embed", {"seconds": 12.5, "outputs": [EMBEDDINGS]})
    writer.set_summary({"k": K})
    return folder


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def _save_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _rerecord(folder: Path, name: str, shape: list[int]) -> None:
    """Make the manifest agree with a file that someone replaced by hand."""
    manifest = _manifest(folder)
    entry = manifest["files"][name]
    entry.update(bytes=(folder / name).stat().st_size, fingerprint=file_fingerprint(folder / name), shape=shape)
    _save_manifest(folder, manifest)


def test_round_trip_keeps_arrays_catalog_and_manifest(
    atlas_dir: Path, catalog: pd.DataFrame, arrays: dict[str, np.ndarray]
) -> None:
    atlas = open_atlas(atlas_dir)
    assert (atlas.name, atlas.n_objects) == ("tiny", N)
    for name, array in arrays.items():
        loaded = atlas.array(name)
        assert isinstance(loaded, np.memmap) and not loaded.flags.writeable
        assert loaded.dtype == array.dtype and loaded.tobytes() == array.tobytes()
    assert atlas.embeddings is atlas.array(EMBEDDINGS)
    assert atlas.neighbors.dtype == np.int32 and atlas.similarities.dtype == np.float16
    assert atlas.reduced.shape == (N, 2)
    pd.testing.assert_frame_equal(atlas.catalog, catalog, check_exact=True)
    assert list(atlas.read_catalog(columns=["ra", "trust"]).columns) == ["ra", "trust"]
    assert atlas.columns == list(catalog.columns)
    assert atlas.catalog_dtypes()["label_availability"] == "category"
    pca = atlas.npz("pca.npz")
    assert np.array_equal(pca["mean"], np.arange(D)) and np.array_equal(pca["components"], np.eye(2, D))
    assert atlas.json("probe.json") == {"sigma_mad": pytest.approx(0.02, rel=1e-6), "missing": None}

    manifest = _manifest(atlas_dir)
    assert manifest["schema"] == SCHEMA and manifest["n_objects"] == N
    created = datetime.datetime.fromisoformat(manifest["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert manifest["updated"] >= manifest["created"]
    assert manifest["code_version"].startswith(galexplore.__version__)
    assert manifest["provenance"] == {"bands": ["g", "r", "z"], "pixel_scale": 0.262, "config": "[simulate]\nn = 6\n"}
    assert manifest["stages"] == {"embed": {"code_version": manifest["code_version"], "seconds": 12.5,
                                            "outputs": [EMBEDDINGS]}}
    assert manifest["summary"] == {"k": K}
    assert manifest["files"][EMBEDDINGS]["shape"] == [N, D]
    assert manifest["files"][EMBEDDINGS]["dtype"] == "float32"
    assert manifest["files"]["similarities.npy"]["dtype"] == "float16"
    assert manifest["files"][CATALOG]["shape"] == [N, len(catalog.columns)]
    for name, entry in manifest["files"].items():
        assert entry["bytes"] == (atlas_dir / name).stat().st_size
        assert entry["fingerprint"] == file_fingerprint(atlas_dir / name)
    assert atlas.has("pca.npz") and not atlas.has("index.faiss")


def test_absent_optional_array_is_none(tmp_path: Path, catalog: pd.DataFrame, arrays: dict) -> None:
    writer = AtlasWriter(tmp_path / "a", "a")
    writer.write_catalog(catalog)
    writer.write_array(EMBEDDINGS, arrays[EMBEDDINGS])
    writer.write_array(NEIGHBORS, arrays[NEIGHBORS])
    atlas = open_atlas(tmp_path / "a")
    assert atlas.reduced is None and atlas.similarities is None
    with pytest.raises(AtlasError, match="no similarities.npy"):
        atlas.array("similarities.npy")


def test_fingerprint_hashes_the_size_and_both_ends(tmp_path: Path) -> None:
    mib = 1 << 20
    data = bytearray(np.random.default_rng(0).integers(0, 256, size=3 * mib, dtype=np.uint8).tobytes())
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    original = file_fingerprint(path)
    data[mib + 10] ^= 1  # the middle MiB is not read: cheap at any size
    path.write_bytes(data)
    assert file_fingerprint(path) == original
    data[-5] ^= 1
    path.write_bytes(data)
    assert file_fingerprint(path) != original
    path.write_bytes(data[:-1])
    assert file_fingerprint(path) != original


def test_code_version_without_git_is_the_package_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable to be found
    assert code_version() == galexplore.__version__
    writer = AtlasWriter(tmp_path / "a", "a")
    assert _manifest(tmp_path / "a")["code_version"] == galexplore.__version__ and not writer.files


def test_create_array_fills_in_chunks(tmp_path: Path) -> None:
    writer = AtlasWriter(tmp_path / "a", "a")
    expected = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    with writer.create_array(EMBEDDINGS, (10, 3), np.float32) as out:
        for start in range(0, 10, 4):
            out[start:start + 4] = expected[start:start + 4]
    assert np.load(tmp_path / "a" / EMBEDDINGS, allow_pickle=False).tobytes() == expected.tobytes()
    assert _manifest(tmp_path / "a")["n_objects"] == 10


def test_create_array_interrupted_leaves_no_file_and_no_entry(atlas_dir: Path) -> None:
    before = sorted(p.name for p in atlas_dir.iterdir())
    writer = AtlasWriter(atlas_dir, "tiny")
    with pytest.raises(RuntimeError, match="killed"):
        with writer.create_array("embeddings_pca.npy", (N, 2), np.float32) as out:
            out[:3] = 1.0
            raise RuntimeError("killed mid-stage")
    assert sorted(p.name for p in atlas_dir.iterdir()) == before  # no partial, no final name
    assert "embeddings_pca.npy" not in _manifest(atlas_dir)["files"]
    assert not writer.has("embeddings_pca.npy")
    open_atlas(atlas_dir)


def test_crash_mid_save_keeps_the_old_file(atlas_dir: Path, arrays: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _manifest(atlas_dir)
    writer = AtlasWriter(atlas_dir, "tiny")

    def save_half_then_fail(f, array, allow_pickle=True) -> None:
        f.write(b"\x93NUMPY" + bytes(40))  # the start of a file that never gets finished
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        writer.write_array(EMBEDDINGS, np.zeros((N, D), np.float32))
    monkeypatch.undo()
    assert (atlas_dir / EMBEDDINGS).read_bytes() == _npy_bytes(arrays[EMBEDDINGS])
    assert _manifest(atlas_dir)["files"] == manifest["files"]
    assert not list(atlas_dir.glob(".*"))
    assert open_atlas(atlas_dir).embeddings.tobytes() == arrays[EMBEDDINGS].tobytes()


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _truncate(folder: Path) -> None:
    path = folder / EMBEDDINGS
    path.write_bytes(path.read_bytes()[:-8])


def _swap(folder: Path) -> None:
    np.save(folder / EMBEDDINGS, np.ones((N, D), np.float32))  # same header, same size, other values


def _wrong_shape(folder: Path) -> None:
    manifest = _manifest(folder)
    manifest["files"][EMBEDDINGS]["shape"] = [N, D + 1]
    _save_manifest(folder, manifest)


def _wrong_rows(folder: Path) -> None:
    np.save(folder / NEIGHBORS, np.zeros((N - 1, K), np.int32))
    _rerecord(folder, NEIGHBORS, [N - 1, K])


def _schema(schema: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        manifest = _manifest(folder)
        manifest["schema"] = schema
        _save_manifest(folder, manifest)

    return damage


def _no_ra(folder: Path) -> None:
    catalog = pd.read_parquet(folder / CATALOG).drop(columns="ra")
    catalog.to_parquet(folder / CATALOG, index=False)
    _rerecord(folder, CATALOG, [N, len(catalog.columns)])


def _unlisted_neighbors(folder: Path) -> None:
    manifest = _manifest(folder)
    del manifest["files"][NEIGHBORS]
    _save_manifest(folder, manifest)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: (f / NEIGHBORS).unlink(), "neighbors.npy is listed in manifest.json but missing"),
        (_truncate, "embeddings.npy has {cut:,} bytes, manifest.json records {size:,}"),
        (_swap, "embeddings.npy does not match its fingerprint"),
        (_wrong_shape, f"embeddings.npy holds float32 [{N}, {D}], manifest.json records float32 [{N}, {D + 1}]"),
        (_wrong_rows, f"neighbors.npy has {N - 1} rows but catalog.parquet has {N}"),
        (_schema("galexplore-atlas/2"), "manifest.json has schema 'galexplore-atlas/2', expected 'galexplore-atlas/1': "
                                        "written by another version"),
        (_schema("something-else/1"), "manifest.json has schema 'something-else/1', expected 'galexplore-atlas/1': "
                                      "not a galexplore atlas"),
        (lambda f: (f / MANIFEST).write_text('{"schema": "galexplore-atlas/1",'), "manifest.json is not valid JSON"),
        (lambda f: (f / MANIFEST).unlink(), "no manifest.json"),
        (_no_ra, "catalog.parquet has no column 'ra'"),
        (_unlisted_neighbors, "neighbors.npy is required but not in manifest.json"),
    ],
    ids=["missing", "truncated", "swapped", "wrong-shape", "wrong-rows", "newer-schema", "foreign-schema",
         "invalid-json", "no-manifest", "catalog-without-ra", "required-unlisted"],
)
def test_damaged_atlas_is_rejected_naming_the_file(
    atlas_dir: Path, damage: Callable[[Path], None], expected: str
) -> None:
    size = (atlas_dir / EMBEDDINGS).stat().st_size
    damage(atlas_dir)
    with pytest.raises(AtlasError) as caught:
        open_atlas(atlas_dir)
    message = str(caught.value)
    assert message.startswith(f"atlas {atlas_dir}: ")
    assert expected.format(cut=size - 8, size=size) in message


def test_inspect_of_a_damaged_atlas_is_one_line_exit_2(atlas_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _truncate(atlas_dir)
    assert main(["inspect", str(atlas_dir)]) == 2
    err = capsys.readouterr().err
    assert "embeddings.npy has" in err and len(err.strip().splitlines()) == 1


def test_write_catalog_rejects_missing_columns_and_repeated_ids(tmp_path: Path, catalog: pd.DataFrame) -> None:
    writer = AtlasWriter(tmp_path / "a", "a")
    with pytest.raises(AtlasError, match="catalog.parquet: the catalog has no column 'dec'"):
        writer.write_catalog(catalog.drop(columns="dec"))
    repeated = catalog.assign(object_id=[7, 8, 9, 8, 10, 11])
    with pytest.raises(AtlasError, match="column 'object_id' is not unique: 8 appears more than once"):
        writer.write_catalog(repeated)
    assert not (tmp_path / "a" / CATALOG).exists() and not writer.has(CATALOG)


def test_per_object_files_must_agree_on_n(atlas_dir: Path, arrays: dict) -> None:
    writer = AtlasWriter(atlas_dir, "tiny")
    with pytest.raises(AtlasError, match=f"embeddings_pca.npy has {N - 1} rows but catalog.parquet has {N}"):
        writer.write_array("embeddings_pca.npy", np.zeros((N - 1, 2), np.float32))
    assert not (atlas_dir / "embeddings_pca.npy").exists()
    with pytest.raises(AtlasError, match="catalog.parquet has"):
        with writer.create_array("embeddings_pca.npy", (N + 1, 2), np.float32):
            pass
    # an array that is not one row per object may have any length
    writer.write_array("bin_edges.npy", np.linspace(0, 1, N + 5), per_object=False)
    # commit itself checks what the manifest claims, and leaves the old manifest in place
    on_disk = _manifest(atlas_dir)
    writer.files[NEIGHBORS]["shape"] = [N + 2, K]
    with pytest.raises(AtlasError, match=f"neighbors.npy has {N + 2} rows but catalog.parquet has {N}"):
        writer.commit()
    assert _manifest(atlas_dir) == on_disk


def test_changing_n_needs_the_stale_files_removed(atlas_dir: Path, arrays: dict, catalog: pd.DataFrame) -> None:
    writer = AtlasWriter(atlas_dir, "tiny")
    smaller = catalog.iloc[:4]
    with pytest.raises(AtlasError, match="catalog.parquet has 4 rows but embeddings.npy has 6"):
        writer.write_catalog(smaller)
    for name in arrays:
        writer.remove(name)
    writer.write_catalog(smaller)
    assert not (atlas_dir / EMBEDDINGS).exists()
    assert "embed" not in _manifest(atlas_dir)["stages"]  # its output was removed
    atlas = open_atlas(atlas_dir, require=(CATALOG,))
    assert atlas.n_objects == 4 and len(atlas.catalog) == 4


def test_reopening_a_writer_keeps_earlier_files(atlas_dir: Path, arrays: dict) -> None:
    created = _manifest(atlas_dir)["created"]
    writer = AtlasWriter(atlas_dir, "tiny", provenance={"encoder": "resnet18"})
    assert writer.dropped == []
    writer.write_array("anomaly_rank.npy", np.arange(N, dtype=np.int64))
    atlas = open_atlas(atlas_dir)
    for name, array in arrays.items():
        assert atlas.array(name).tobytes() == array.tobytes()
    assert atlas.array("anomaly_rank.npy").tolist() == list(range(N))
    manifest = atlas.manifest
    assert manifest["created"] == created
    assert manifest["provenance"]["encoder"] == "resnet18" and manifest["provenance"]["bands"] == ["g", "r", "z"]
    assert manifest["stages"]["embed"]["seconds"] == 12.5


def test_reopening_drops_what_no_longer_matches(atlas_dir: Path) -> None:
    _truncate(atlas_dir)  # as if killed between renaming a new file and writing the manifest
    (atlas_dir / ".neighbors.npy.abc123.partial").write_bytes(b"half")
    writer = AtlasWriter(atlas_dir, "tiny")
    assert writer.dropped == [EMBEDDINGS]
    manifest = _manifest(atlas_dir)
    assert EMBEDDINGS not in manifest["files"] and "embed" not in manifest["stages"]
    assert not (atlas_dir / ".neighbors.npy.abc123.partial").exists()
    with pytest.raises(AtlasError, match="embeddings.npy is required"):
        open_atlas(atlas_dir)
    assert open_atlas(atlas_dir, require=(CATALOG, NEIGHBORS)).n_objects == N


def test_writer_reads_back_and_checks_its_files(atlas_dir: Path, arrays: dict) -> None:
    writer = AtlasWriter(atlas_dir, "tiny")
    reader = writer.reader()
    assert reader.n_objects == N and reader.embeddings.tobytes() == arrays[EMBEDDINGS].tobytes()
    assert writer.is_valid(EMBEDDINGS) and not writer.is_valid("umap.npy")
    _truncate(atlas_dir)
    assert not writer.is_valid(EMBEDDINGS) and writer.is_valid(NEIGHBORS)


def test_writer_refuses_a_foreign_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / MANIFEST).write_text('{"schema": "someone-else/3"}')
    with pytest.raises(AtlasError, match="has schema 'someone-else/3', expected 'galexplore-atlas/1'"):
        AtlasWriter(folder, "x")
    assert (folder / MANIFEST).read_text() == '{"schema": "someone-else/3"}'


def test_no_file_is_a_pickle(atlas_dir: Path, tmp_path: Path) -> None:
    names = [p.name for p in atlas_dir.iterdir()]
    assert {EMBEDDINGS, NEIGHBORS, "pca.npz"} <= set(names)
    for name in names:
        if name.endswith(".npy"):
            assert np.load(atlas_dir / name, allow_pickle=False).dtype != object
        elif name.endswith(".npz"):
            with np.load(atlas_dir / name, allow_pickle=False) as arrays:
                assert all(arrays[key].dtype != object for key in arrays.files)
    writer = AtlasWriter(tmp_path / "b", "b")
    with pytest.raises(AtlasError, match="objects.npy: dtype object holds Python objects"):
        writer.write_array("objects.npy", np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(AtlasError, match=r"side.npz\[x\]: dtype object"):
        writer.write_npz("side.npz", x=np.array(["a", 1], dtype=object))
    assert not (tmp_path / "b" / "objects.npy").exists() and not (tmp_path / "b" / "side.npz").exists()


@pytest.mark.parametrize("name", ["../escape.npy", "sub/x.npy", ".hidden.npy", "manifest.json", "embeddings.npz"])
def test_file_names_are_plain_and_typed(tmp_path: Path, name: str) -> None:
    writer = AtlasWriter(tmp_path / "a", "a")
    with pytest.raises(ValueError, match="embeddings.npy|ending in .npy"):
        writer.write_array(name, np.zeros((2, 2)), per_object=False)
    assert not (tmp_path / "escape.npy").exists()


def test_inspect_summarises_an_atlas(atlas_dir: Path, catalog: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(atlas_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "atlas" and summary["schema"] == SCHEMA
    assert (summary["name"], summary["n_objects"]) == ("tiny", N)
    assert summary["code_version"].startswith(galexplore.__version__)
    assert summary["files"][EMBEDDINGS] == {"shape": [N, D], "dtype": "float32",
                                            "bytes": (atlas_dir / EMBEDDINGS).stat().st_size}
    assert summary["columns"]["umap_x"] == "float32" and summary["columns"]["label_availability"] == "category"
    assert summary["labels"]["label_availability"] == {"none": 4, "spec-z": 1, "spec-z+morphology": 1}
    assert summary["ranges"]["umap_x"] == {"min": -1.5, "max": 3.25, "missing": 0}
    assert summary["ranges"]["trust"]["missing"] == 1
    assert summary["ranges"]["trust"]["max"] == pytest.approx(0.9, rel=1e-6)
    assert summary["ranges"]["anomaly_score"]["min"] == pytest.approx(catalog["anomaly_score"].min(), rel=1e-6)
    assert summary["stages"]["embed"]["seconds"] == 12.5

    assert main(["inspect", str(atlas_dir)]) == 0
    text = capsys.readouterr().out
    assert f"objects      {N}" in text and "tiny" in text
    assert f"embeddings.npy             {N} x {D}" in text
    assert "label_availability  none: 4, spec-z: 1, spec-z+morphology: 1" in text
    assert "umap_x             -1.5 .. 3.25" in text
    assert "trust" in text and "1 missing" in text
    assert "embed" in text and "12.5 s" in text
    assert "config              (2 lines of text)" in text


def test_inspect_of_a_partial_atlas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "new"
    AtlasWriter(folder, "new").write_array("bin_edges.npy", np.arange(3.0), per_object=False)
    assert main(["inspect", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_objects"] == 0 and summary["columns"] == {} and list(summary["files"]) == ["bin_edges.npy"]
