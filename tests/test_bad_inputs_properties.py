"""Beside the catalogue of bad inputs (test_bad_inputs.py), inputs no one wrote down: Hypothesis
draws configs, catalogs and URLs, and a seeded fuzz pass mutates the bytes of a valid atlas. Each
must be read, or refused with a `GalexploreError`; never anything else (a traceback, a hang).

Kept fast: a few dozen examples per property and a few hundred mutations, seconds in all.
"""

from __future__ import annotations

import json
import shutil
import string
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from galexplore.atlas.files import CATALOG, EMBEDDINGS, MANIFEST, NEIGHBORS, SIMILARITIES, AtlasWriter, open_atlas
from galexplore.config import Config, config_from_dict, load_config, to_toml
from galexplore.errors import GalexploreError


FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- the config loader -------------------------------------------------------------------------------

SECTIONS = ["survey", "simulate", "augment", "model", "train", "embed", "project", "neighbors", "trust",
            "anomaly", "probes"]
KEYS = ["n", "k", "seed", "name", "queue", "batch_size", "projection_dims", "bands", "labels", "morphology",
        "epochs", "lr", "crop_size", "jitter", "order", "method", "pca_dim", "image_size", "source", "path"]
scalars = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True), st.booleans(),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
                      max_leaves=8)
tables = st.dictionaries(st.sampled_from(SECTIONS + KEYS), st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values,
                                                                                                max_size=4)), max_size=5)


@FAST
@given(tables)
def test_any_mapping_is_a_config_or_a_config_error(raw):
    try:
        cfg = config_from_dict(raw, source="drawn.toml")
    except GalexploreError as exc:
        assert str(exc).startswith("drawn.toml: ") and "\n" not in str(exc)
        return
    assert isinstance(cfg, Config)
    # what loads is written back as TOML that loads to the same config
    assert config_from_dict(tomllib.loads(to_toml(cfg))) == cfg


@FAST
@given(st.text(alphabet=string.printable + "[]{}=\"'#\u00e9\x00", max_size=200))
def test_any_text_is_a_config_or_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("config") / "drawn.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except GalexploreError as exc:
        assert str(exc).startswith(f"{path}: ")


# -- the catalog readers ------------------------------------------------------------------------------

cells = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(alphabet=string.printable + "é\"", max_size=8), st.none())
headers = st.lists(st.sampled_from(["object_id", "ra", "dec", "file", "z_spec", "type", "", "ra.1", "name"]),
                   min_size=1, max_size=5)


@FAST
@given(headers, st.lists(st.lists(cells, min_size=1, max_size=6), max_size=6))
def test_any_csv_is_a_checked_catalog_or_a_survey_error(columns, rows):
    from galexplore.survey.base import check_catalog
    from galexplore.survey.catalogs import catalog_positions, parse_csv_catalog
    from galexplore.config import SurveyConfig

    text = ",".join(columns) + "\n" + "".join(",".join("" if c is None else str(c) for c in row) + "\n" for row in rows)
    try:
        table = parse_csv_catalog(text.encode("utf-8"), "drawn.csv")
        table = check_catalog(catalog_positions(table, SurveyConfig(), "drawn.csv"), len(table), "drawn.csv")
    except GalexploreError as exc:
        assert str(exc).startswith("drawn.csv: ")
        return
    assert table["ra"].between(0, 360).all() and table["dec"].between(-90, 90).all()
    assert table["object_id"].notna().all() and table["object_id"].is_unique


@FAST
@given(st.binary(max_size=300), st.sampled_from(["t.csv", "t.fits", "t.parquet", "t.vot", "t.xml"]))
def test_any_uploaded_bytes_are_a_catalog_or_refused(data, name):
    import warnings

    from galexplore.atlas.export import read_uploaded_catalog

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's warnings on damaged files, before our refusal
        try:
            table = read_uploaded_catalog(data, name)
        except GalexploreError:
            return
    assert {"ra", "dec"} <= set(table.columns)


# -- the URL state ------------------------------------------------------------------------------------

url_texts = st.one_of(st.text(max_size=30), st.from_regex(r"-?\d{1,12}(\.\d+)?", fullmatch=True),
                      st.sampled_from(["nan", "inf", "-inf", "1e308", "true", "0,1,0,1", "1,0,0,1", "0,1e300,0,1"]))


@FAST
@given(st.dictionaries(st.sampled_from(["colour", "eq", "trust", "below", "galaxy", "k", "view", "present", "other"]),
                       st.lists(st.one_of(url_texts.map(str.encode), st.binary(max_size=20)), min_size=1, max_size=2)),
       st.integers(1, 10**6))
def test_any_url_gives_explorer_values_in_range(args, n):
    from galexplore.explorer.urlstate import K_RANGE, URL_KEYS, parse_view, read_url

    state = read_url(args, ["density", "z_spec", "type"], n)
    values = state.values
    assert set(values) <= set(URL_KEYS.values())
    assert K_RANGE[0] <= values.get("k", 1) <= K_RANGE[1]
    assert 0.0 <= values.get("trust_threshold", 0.0) <= 1.0
    assert -1 <= values.get("query", -1) < n
    assert values.get("colour", "density") in ("density", "z_spec", "type")
    assert "view" not in values or parse_view(values["view"]) is not None
    used = sum(1 for key in args if key in URL_KEYS)
    assert len(values) + len(state.notes) >= used  # every key given is used or noted


# -- a fuzz pass over the atlas reader ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_atlas(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "atlas"
    rng = np.random.default_rng(8)
    n = 12
    x = rng.normal(size=(n, 4)).astype(np.float32)
    writer = AtlasWriter(folder, "fuzz")
    writer.write_catalog(pd.DataFrame({"object_id": np.arange(n), "ra": rng.uniform(0, 360, n),
                                       "dec": rng.uniform(-60, 60, n), "type": rng.choice(["E", "S"], n)}))
    writer.write_array(EMBEDDINGS, x / np.linalg.norm(x, axis=1, keepdims=True))
    writer.write_array(NEIGHBORS, np.array([[(i + 1) % n, (i + 2) % n] for i in range(n)], np.int32))
    writer.write_array(SIMILARITIES, rng.uniform(size=(n, 2)).astype(np.float16))
    writer.write_npz("pca.npz", components=rng.normal(size=(2, 4)))
    writer.write_json("notes.json", {"a": [1, 2, {"b": None}]})
    return folder


def _read_everything(folder: Path) -> None:
    """What the app and the CLI read of an atlas: the manifest, every file, the catalog."""
    atlas = open_atlas(folder, require=())
    for name in atlas.files:
        if name.endswith(".npy"):
            np.asarray(atlas.array(name)).sum()
        elif name.endswith(".npz"):
            atlas.npz(name)
        elif name.endswith(".json"):
            atlas.json(name)
    if atlas.has(CATALOG):
        atlas.read_catalog()
        atlas.catalog_dtypes()


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to eight random byte changes: flipped bits, new bytes, a cut, a duplicated span."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        kind = int(rng.integers(0, 4))
        at = int(rng.integers(0, max(1, len(out))))
        if kind == 0 and out:
            out[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1 and out:
            out[at] = int(rng.integers(0, 256))
        elif kind == 2:
            del out[at:at + int(rng.integers(1, 64))]
        else:
            out[at:at] = out[at:at + int(rng.integers(1, 32))]
    return bytes(out)


FUZZ_ROUNDS = 300


def test_a_fuzzed_atlas_is_read_or_refused_with_a_message(small_atlas: Path, tmp_path: Path) -> None:
    """Seeded byte mutations of the manifest, the catalog and the arrays. Half of the rounds also
    rewrite the manifest's sizes and fingerprints to agree with the mutated file, as a forger
    would, so the readers behind the fingerprint check are reached too."""
    from galexplore.atlas.files import file_fingerprint

    rng = np.random.default_rng(2024)
    targets = [MANIFEST, CATALOG, EMBEDDINGS, NEIGHBORS, "pca.npz", "notes.json"]
    outcomes = {"read": 0, "refused": 0}
    for round_ in range(FUZZ_ROUNDS):
        folder = tmp_path / f"r{round_}"
        shutil.copytree(small_atlas, folder)
        name = targets[round_ % len(targets)]
        path = folder / name
        path.write_bytes(_mutate(path.read_bytes(), rng))
        if name != MANIFEST and round_ % 2:
            manifest = json.loads((folder / MANIFEST).read_text())
            manifest["files"][name].update(bytes=path.stat().st_size, fingerprint=file_fingerprint(path))
            (folder / MANIFEST).write_text(json.dumps(manifest))
        try:
            _read_everything(folder)
            outcomes["read"] += 1
        except GalexploreError as exc:
            assert "\n" not in str(exc) and str(folder) in str(exc), (round_, name, exc)
            outcomes["refused"] += 1
        shutil.rmtree(folder)
    assert outcomes["refused"] > FUZZ_ROUNDS // 2, outcomes  # most damage is caught, and none escaped as a crash


@FAST
@given(st.binary(max_size=400))
def test_any_manifest_bytes_are_an_atlas_or_refused(small_atlas, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("manifest") / "atlas"
    shutil.copytree(small_atlas, folder)
    (folder / MANIFEST).write_bytes(data)
    try:
        _read_everything(folder)
    except GalexploreError as exc:
        assert str(exc).startswith(f"atlas {folder}: ")

