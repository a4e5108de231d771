"""A class column (Galaxy Zoo 1's gz1_type) as a first-class label, end to end: declared in
probes.categorical, it gets trust, a multinomial probe (<column>_pred, <column>_prob) with
held-out scores, and a colouring with a class legend in the explorer; declared but missing, the
build refuses it and leaves no atlas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galexplore.pipeline.build import build
from galexplore.labels import UNLABELLED
from galexplore.config import config_from_dict
from galexplore.errors import GalexploreError
from galexplore.maps.scores import labelled_masks

APP = Path(__file__).resolve().parents[1] / "app"
N = 300
CLASSES = ("edge-on", "elliptical", "spiral")  # sorted, as the build lists them
N_UNKNOWN, N_EMPTY = 24, 16  # rows "unknown" and rows with an empty (or blank) cell: no label


def _config(**probes: object) -> dict:
    return {"name": "classes", "seed": 0, "embed": {"pca_dim": 8}, "neighbors": {"k": 10},
            "project": {"n_neighbors": 8}, "anomaly": {"k": 5},
            "trust": {"k": 5, "labels": {"gz1": "gz1_type"}},
            "probes": {"morphology": [], "categorical": ["gz1_type"], "unlabelled": ["unknown"], **probes}}


@pytest.fixture(scope="module")
def given(tmp_path_factory) -> Path:
    """Embeddings of 3 well-separated clusters (N, 16), one class each, and a CSV catalog whose
    gz1_type is the cluster's class but "unknown" on some rows and empty or blank on others."""
    folder = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(5)
    which = np.arange(N) % 3
    centres = rng.standard_normal((3, 16)) * 4
    np.save(folder / "emb.npy", (centres[which] + rng.standard_normal((N, 16))).astype(np.float32))
    kind = np.array(CLASSES, dtype=object)[which]
    order = rng.permutation(N)
    kind[order[:N_UNKNOWN]] = "unknown"
    kind[order[N_UNKNOWN:N_UNKNOWN + N_EMPTY // 2]] = ""  # an empty CSV cell: read as missing
    kind[order[N_UNKNOWN + N_EMPTY // 2:N_UNKNOWN + N_EMPTY]] = "  "  # a blank one: no label either
    pd.DataFrame({"object_id": np.arange(N), "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-60, 60, N),
                  "cluster": which, "gz1_type": kind}).to_csv(folder / "cat.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def atlas(given: Path) -> Path:
    out = given / "atlas"
    build(config_from_dict(_config(), source="test"), out, embeddings=given / "emb.npy", catalog=given / "cat.csv")
    return out


def _labelled(catalog: pd.DataFrame) -> np.ndarray:
    text = catalog["gz1_type"].astype(object).where(catalog["gz1_type"].notna(), "").astype(str).str.strip()
    return ((text != "") & (text != "unknown")).to_numpy()


def test_the_probe_predicts_a_class_and_its_probability_for_every_galaxy(atlas: Path) -> None:
    from galexplore.atlas.files import open_atlas

    opened = open_atlas(atlas)
    catalog = opened.catalog
    pred, prob = catalog["gz1_type_pred"], catalog["gz1_type_prob"]
    assert pd.api.types.is_string_dtype(pred) and set(pred) <= set(CLASSES)  # strings stay strings
    assert prob.dtype.kind == "f" and ((prob >= 0) & (prob <= 1)).all()
    assert (prob >= 1 / len(CLASSES) - 1e-6).all()  # the predicted class is the likeliest of three
    # labelled rows are predicted out-of-fold; well-separated clusters are recovered almost always
    labelled = _labelled(catalog)
    assert labelled.sum() == N - N_UNKNOWN - N_EMPTY
    truth = np.array(CLASSES)[catalog["cluster"].to_numpy()]
    assert np.mean(pred.to_numpy()[labelled] == truth[labelled]) > 0.95  # chance: 1/3
    # the unlabelled rows get the class of their cluster from the probe of every label
    assert np.mean(pred.to_numpy()[~labelled] == truth[~labelled]) > 0.9

    stage = opened.stages["probes"]
    assert stage["classes"] == {"gz1_type": list(CLASSES)} and stage["unlabelled"] == ["unknown"]
    held_out = stage["held_out"]["gz1_type"]
    assert held_out["kind"] == "categorical" and held_out["classes"] == list(CLASSES)
    assert held_out["n_train"] + held_out["n_test"] == N - N_UNKNOWN - N_EMPTY
    assert held_out["metrics"]["accuracy"] > 0.95 and held_out["metrics"]["balanced_accuracy"] > 0.95
    assert stage["labelled_predictions"]["gz1_type"] == "5-fold out-of-fold"


def test_trust_of_the_class_label_counts_unknown_and_empty_rows_as_unlabelled(atlas: Path) -> None:
    from galexplore.atlas.files import open_atlas

    opened = open_atlas(atlas)
    catalog = opened.catalog
    labelled = _labelled(catalog)
    assert opened.stages["scores"]["labelled"] == {"gz1": N - N_UNKNOWN - N_EMPTY}
    availability = catalog["label_availability"].astype(str).to_numpy()
    np.testing.assert_array_equal(availability, np.where(labelled, "gz1", "none"))
    trust = catalog["trust_gz1"].to_numpy()
    assert np.isfinite(trust).all() and ((trust >= 0) & (trust <= 1)).all()
    # calibrated on the labelled galaxies: uniform over them, so their median is near 0.5
    assert abs(np.median(trust[labelled]) - 0.5) < 0.1
    np.testing.assert_array_equal(catalog["trust"].to_numpy(), trust)  # the only kind


def test_labelled_masks_read_class_columns_and_keep_numbers_as_they_were() -> None:
    table = pd.DataFrame({"gz1_type": ["spiral", "unknown", "", None, " merger "], "n": [1, -1, np.nan, 0, 2],
                          "z_spec": [0.1, np.nan, 0.2, np.inf, 0.3]})
    masks = labelled_masks(table, {"gz1": "gz1_type", "z": "z_spec", "n": "n"}, unlabelled=["unknown", "-1"])
    assert masks["gz1"].tolist() == [True, False, False, False, True]  # text: a class column without declaring
    assert masks["z"].tolist() == [True, False, True, False, True]  # numbers: finite, unlabelled ignored
    assert masks["n"].tolist() == [True, True, False, True, True]
    declared = labelled_masks(table, {"n": "n"}, categorical=["n"], unlabelled=["-1"])
    assert declared["n"].tolist() == [True, False, False, True, True]  # an integer class column's "-1"


def test_the_explorer_colours_by_the_class_and_its_prediction_with_a_legend(atlas: Path) -> None:
    import holoviews as hv
    from bokeh.document import Document
    from bokeh.models import GlyphRenderer
    from bokeh.models import ImageStack as ImageStackGlyph

    from galexplore.explorer.page import UNLABELLED_COLOUR, Explorer, category_colours
    from galexplore.explorer.store import load

    data = load(atlas)
    label, pred = data.colourings["gz1_type"], data.colourings["gz1_type_pred"]
    assert label.kind == pred.kind == "categorical"
    assert label.categories == (*CLASSES, UNLABELLED) and pred.categories == CLASSES  # the same class order
    assert "gz1_type_prob" in data.colourings and data.colourings["gz1_type_prob"].kind == "continuous"
    points = data.points("gz1_type").data["gz1_type"]
    assert (points == UNLABELLED).sum() == N_UNKNOWN + N_EMPTY and points.notna().all()
    data.warm(["gz1_type", "gz1_type_pred"])  # what a served app prepares before anyone asks
    np.testing.assert_array_equal(data.points("gz1_type_pred").data["gz1_type_pred"].astype(str),
                                  data.catalog["gz1_type_pred"].astype(str))

    explorer = Explorer(data, colour="gz1_type")
    explorer.layout().get_root(Document())  # the whole page, as served
    stack = list(explorer.map.pane.object[()].values())[0]
    assert isinstance(stack, hv.ImageStack)
    assert [str(v) for v in stack.vdims] == list(label.categories)  # one layer per class, in legend order
    counts = stack.data.sum(dim=["umap_x", "umap_y"])
    assert {c: int(counts.sel(gz1_type=c)) for c in label.categories} == {
        c: int((points == c).sum()) for c in label.categories}  # every galaxy in its class's layer (all in view)
    colours = category_colours(label)
    assert colours[-1] == UNLABELLED_COLOUR and UNLABELLED_COLOUR not in colours[:-1] and len(set(colours)) == 4
    assert category_colours(pred) == colours[:-1]  # a class has one colour in both maps
    plot = hv.renderer("bokeh").get_plot(explorer.map.pane.object[()])
    [legend] = plot.state.legend
    assert list(legend.items[0].renderers[0].data_source.data[legend.items[0].label.field]) == list(label.categories)
    [mapper] = [r.glyph.color_mapper for r in plot.state.select(GlyphRenderer) if isinstance(r.glyph, ImageStackGlyph)]
    assert list(mapper.palette) == colours

    # the galaxy under the cursor and the gallery say its class and the predicted one
    row = int(np.flatnonzero(_labelled(data.catalog))[0])
    explorer.map.hover(data.catalog["umap_x"].iat[row], data.catalog["umap_y"].iat[row])
    line = explorer.map.under_cursor.object
    assert f"gz1_type {data.catalog['gz1_type'].iat[row]}" in line and "gz1_type_pred" in line
    explorer.state.query = row
    record = explorer.gallery.column[0][1][1].object
    assert "<td>gz1_type_pred</td>" in record and "<td>gz1_type_prob</td>" in record


def test_the_report_lists_the_class_probes_held_out_scores(atlas: Path, tmp_path: Path) -> None:
    from galexplore.atlas.files import open_atlas
    from galexplore.report.page import probes_section

    section = probes_section(open_atlas(atlas), tmp_path)
    assert "gz1_type" in section.html and "balanced_accuracy" in section.html
    assert "balanced accuracy" in section.html  # the note says what the class scores are


def test_a_declared_class_column_missing_from_the_catalog_is_refused(given: Path, tmp_path: Path) -> None:
    out = tmp_path / "atlas"
    config = config_from_dict(_config(categorical=["gz1_types"]), source="test")
    with pytest.raises(GalexploreError, match=r"cat\.csv: probes\.categorical\[0\] names column 'gz1_types', "
                                              r"which the catalog lacks \(did you mean 'gz1_type'\?\)"):
        build(config, out, embeddings=given / "emb.npy", catalog=given / "cat.csv")
    assert not out.exists()


def test_a_class_column_of_one_class_is_refused(given: Path, tmp_path: Path) -> None:
    out = tmp_path / "atlas"
    config = config_from_dict(_config(unlabelled=["unknown", "spiral", "edge-on"]), source="test")
    with pytest.raises(GalexploreError, match=r"probes\.categorical\[0\] column 'gz1_type' has only the class "
                                              r"'elliptical' once .*expected at least 2 classes"):
        build(config, out, embeddings=given / "emb.npy", catalog=given / "cat.csv")
    assert not out.exists()


def test_a_text_trust_label_not_declared_a_class_column_is_refused(given: Path, tmp_path: Path) -> None:
    config = config_from_dict(_config(categorical=[], unlabelled=[]), source="test")
    with pytest.raises(GalexploreError, match=r"trust\.labels column 'gz1_type' \(label kind 'gz1'\) holds .* "
                                              r"or a class column: list it in probes\.categorical"):
        build(config, tmp_path / "atlas", embeddings=given / "emb.npy", catalog=given / "cat.csv")


def test_the_gz1_dev_preset_declares_its_class_column(shared_data: Path) -> None:
    from galexplore.pipeline.inputs import check_catalog_columns
    from galexplore.labels import class_names
    from galexplore.config import load_config
    from galexplore.survey import open_survey

    if not (shared_data / "gz1_dev" / "catalog.csv").exists():
        pytest.skip(f"gz1_dev not found in {shared_data}")
    config = load_config(APP.parent / "pipelines" / "gz1_dev.toml")
    with open_survey(config) as survey:
        catalog = survey.catalog
    check_catalog_columns(catalog, config, "gz1_dev")  # accepted as it is
    probes = config.probes
    assert probes.categorical == ("gz1_type",) and probes.morphology == ()
    assert class_names(catalog["gz1_type"], probes.unlabelled) == ["edge-on", "elliptical", "merger", "spiral"]
    masks = labelled_masks(catalog, config.trust.labels, categorical=probes.categorical, unlabelled=probes.unlabelled)
    assert int(masks["gz1"].sum()) == 2999 - 25  # the 25 "unknown" galaxies are unlabelled
