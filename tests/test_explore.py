"""The explorer's per-interaction logic: lassos, clicks, search, similar galaxies, export, cutouts."""

from __future__ import annotations

import datetime
import io
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from PIL import Image
from scipy.spatial import ConvexHull

from galexplore.atlas.files import AtlasWriter, open_atlas
from galexplore.errors import GalexploreError
from galexplore.explorer.cutouts import CutoutSource
from galexplore.explorer.queries import MapIndex, combine, find, parse_position, separations_arcsec, similar, sky_links
from galexplore.atlas.export import EXPORT_FORMATS, _astropy_table, _votable, export_name, export_selection
from galexplore.survey.render import lupton_rgb
from galexplore.survey import open_path

from .synthetic import PIPELINES

# A "C": the unit square minus its right-middle notch. Its convex hull is the whole square.
C_SHAPE = np.array([[0, 0], [1, 0], [1, 0.3], [0.3, 0.3], [0.3, 0.7], [1, 0.7], [1, 1], [0, 1]], float)
# A five-pointed star (vertices alternate between radius 0.45 and 0.18 about (0.5, 0.5)).
_angles = np.pi / 2 + np.arange(10) * np.pi / 5
STAR = 0.5 + np.column_stack([np.cos(_angles), np.sin(_angles)]) * np.where(np.arange(10) % 2, 0.18, 0.45)[:, None]
# A bow tie: its edges cross at (0.5, 0.5); two triangles, the left and the right.
BOW_TIE = np.array([[0, 0], [1, 1], [1, 0], [0, 1]], float)
# A lasso drawn twice around (a spiral of two turns), and one that overshoots its start.
_turns = np.linspace(0, 4 * np.pi, 400, endpoint=False)
TWICE_AROUND = 0.5 + 0.4 * np.column_stack([np.cos(_turns), np.sin(_turns)]) * (1 + 0.02 * _turns)[:, None]
_past = np.linspace(0, 2.3 * np.pi, 300)
OVERSHOOT = 0.5 + 0.35 * np.column_stack([np.cos(_past), np.sin(_past)]) * (1 + 0.05 * _past)[:, None]


def winding_inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Brute force, independent of shapely: the nonzero winding rule, a signed count of the
    polygon's edges that cross a horizontal ray from each point."""
    x, y = points[:, 0:1], points[:, 1:2]                                  # (N, 1)
    a, b = polygon, np.roll(polygon, -1, axis=0)                            # (V, 2) edge ends
    side = (b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (x - a[:, 0]) * (b[:, 1] - a[:, 1])  # (N, V)
    up = (a[:, 1] <= y) & (b[:, 1] > y) & (side > 0)
    down = (a[:, 1] > y) & (b[:, 1] <= y) & (side < 0)
    return up.sum(axis=1) != down.sum(axis=1)


def even_odd_inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """The even-odd rule: a ray from the point crosses the edges an odd number of times."""
    x, y = points[:, 0:1], points[:, 1:2]
    a, b = polygon, np.roll(polygon, -1, axis=0)
    straddles = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return (straddles & (x < x_cross)).sum(axis=1) % 2 == 1


def in_hull(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    hull = ConvexHull(polygon)
    return (points @ hull.equations[:, :2].T + hull.equations[:, 2] <= 0).all(axis=1)


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.random.default_rng(3).uniform(-0.1, 1.1, size=(20_000, 2))


@pytest.fixture(scope="module")
def index(points: np.ndarray) -> MapIndex:
    ra, dec = sky_points(len(points))
    return MapIndex(points[:, 0], points[:, 1], ra, dec)


def sky_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the sphere, plus clusters straddling RA = 0/360 and around both poles."""
    rng = np.random.default_rng(5)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    k = n // 10
    ra[:k] = rng.uniform(-0.01, 0.01, k) % 360.0
    dec[:k] = rng.uniform(-0.01, 0.01, k)
    ra[k:2 * k] = rng.uniform(0, 360, k)
    dec[k:2 * k] = rng.uniform(89.99, 90.0, k)
    ra[2 * k:3 * k] = rng.uniform(0, 360, k)
    dec[2 * k:3 * k] = -rng.uniform(89.99, 90.0, k)
    return ra, dec


# -- the map ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("polygon", [C_SHAPE, STAR], ids=["C", "star"])
def test_in_polygon_is_point_in_polygon_not_the_convex_hull(index, points, polygon) -> None:
    rows = index.in_polygon(polygon)
    np.testing.assert_array_equal(rows, np.flatnonzero(even_odd_inside(points, polygon)))
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0) and rows.size > 1000
    # the convex hull would have taken far more: the notch of the C, the star's gaps
    assert in_hull(points, polygon).sum() > 1.3 * len(rows)


@pytest.mark.parametrize("polygon", [BOW_TIE, TWICE_AROUND, OVERSHOOT], ids=["bow-tie", "twice-around", "overshoot"])
def test_a_lasso_crossing_itself_selects_all_it_encloses(index, points, polygon) -> None:
    rows = index.in_polygon(polygon)
    np.testing.assert_array_equal(rows, np.flatnonzero(winding_inside(points, polygon)))
    if polygon is not BOW_TIE:  # the even-odd rule would drop what was circled twice
        assert even_odd_inside(points, polygon).sum() < len(rows)


def test_in_polygon_is_the_same_for_any_vertex_order_and_a_closed_ring(index, points) -> None:
    rows = index.in_polygon(C_SHAPE)
    np.testing.assert_array_equal(index.in_polygon(C_SHAPE[::-1]), rows)
    np.testing.assert_array_equal(index.in_polygon(np.vstack([C_SHAPE, C_SHAPE[:1]])), rows)


@pytest.mark.parametrize("polygon", [np.empty((0, 2)), [[0, 0], [1, 1]], [[0, 0], [1, 1], [0, 0]],
                                     [[0, 0], [0.5, 0.5], [1, 1]]], ids=["none", "two", "two-repeated", "collinear"])
def test_in_polygon_without_an_area_selects_nothing(index, polygon) -> None:
    rows = index.in_polygon(np.asarray(polygon, float))
    assert rows.size == 0 and rows.dtype == np.int64


def test_in_box_takes_corners_in_any_order(index, points) -> None:
    x, y = points[:, 0], points[:, 1]
    expected = np.flatnonzero((x >= 0.2) & (x <= 0.6) & (y >= 0.1) & (y <= 0.35))
    assert expected.size > 100
    np.testing.assert_array_equal(index.in_box(0.2, 0.6, 0.1, 0.35), expected)
    np.testing.assert_array_equal(index.in_box(0.6, 0.2, 0.35, 0.1), expected)
    assert index.in_box(5, 6, 5, 6).size == 0


def test_nearest_equals_brute_force(index, points) -> None:
    queries = np.random.default_rng(11).uniform(-0.5, 1.5, size=(100, 2))
    for qx, qy in queries:
        distances = np.hypot(points[:, 0] - qx, points[:, 1] - qy)
        row, distance = index.nearest(qx, qy)
        assert row == int(np.argmin(distances))
        assert distance == pytest.approx(distances.min(), rel=1e-12)


def test_rows_without_coordinates_are_never_returned() -> None:
    x = np.array([0.0, np.nan, 1.0, 2.0])
    y = np.array([0.0, 0.5, 1.0, np.nan])
    ra = np.array([10.0, 10.0001, np.nan, 20.0])
    dec = np.zeros(4)
    index = MapIndex(x, y, ra, dec)
    assert index.nearest(0.1, 0.5)[0] == 0
    assert index.nearest_sky(10.0001, 0.0)[0] in (0, 1)
    assert index.nearest_sky(11.0, 0.0)[0] == 1
    np.testing.assert_array_equal(index.in_box(-1, 3, -1, 3), [0, 2])


def test_nearest_sky_equals_astropy_across_ra_zero_and_the_poles(index) -> None:
    ra, dec = sky_points(len(index))
    catalog = SkyCoord(ra * u.deg, dec * u.deg)
    queries = [(0.0001, 0.0), (359.9999, 0.002), (0.0, 0.0), (123.0, 89.995), (301.0, 89.9999),
               (10.0, -89.995), (180.0, -90.0), (0.0, 90.0), (359.99999, -0.005)]
    rng = np.random.default_rng(8)
    queries += list(zip(rng.uniform(0, 360, 20), np.degrees(np.arcsin(rng.uniform(-1, 1, 20)))))
    for qra, qdec in queries:
        separations = SkyCoord(qra * u.deg, qdec * u.deg).separation(catalog).arcsec
        row, separation = index.nearest_sky(qra, qdec)
        assert separation == pytest.approx(separations.min(), abs=1e-3)
        assert separations[row] == pytest.approx(separations.min(), abs=1e-3)


def test_nearest_sky_finds_the_neighbour_across_ra_zero() -> None:
    index = MapIndex(np.zeros(3), np.zeros(3), np.array([359.9999, 0.01, 180.0]), np.array([10.0, 10.0, 10.0]))
    row, separation = index.nearest_sky(0.0001, 10.0)  # 0.0002 deg of RA at dec 10 away from row 0
    expected = SkyCoord(0.0001 * u.deg, 10 * u.deg).separation(SkyCoord(359.9999 * u.deg, 10 * u.deg)).arcsec
    assert row == 0 and separation == pytest.approx(expected, abs=1e-6)



def _vincenty_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """The explorer's own Vincenty formula, one pair at a time, before astropy's vectorised one replaced it."""
    l1, b1, l2, b2 = map(math.radians, (ra1, dec1, ra2, dec2))
    dl = l2 - l1
    num1 = math.cos(b2) * math.sin(dl)
    num2 = math.cos(b1) * math.sin(b2) - math.sin(b1) * math.cos(b2) * math.cos(dl)
    den = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(dl)
    return math.degrees(math.atan2(math.hypot(num1, num2), den)) * 3600.0


def test_separations_equal_the_pairwise_vincenty_formula_at_every_scale() -> None:
    """From a milliarcsecond to the antipode, across RA 0 and at the poles, to 1e-9 of the separation."""
    rng = np.random.default_rng(5)
    ras, decs = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    centres = [(150.1, 2.2), (0.0001, 10.0), (359.9999, -0.5), (12.0, 89.9999), (200.0, -90.0)]
    for ra, dec in centres:
        near = (ra + np.array([2.8e-7, 1e-4, 0.1, 179.9]), np.clip(dec + np.array([0.0, 1e-4, -0.1, 0.0]), -90, 90))
        others = (np.concatenate([ras, near[0] % 360, [(ra + 180) % 360]]), np.concatenate([decs, near[1], [-dec]]))
        expected = [_vincenty_arcsec(ra, dec, r, d) for r, d in zip(*others)]
        np.testing.assert_allclose(separations_arcsec(ra, dec, *others), expected, rtol=1e-9, atol=1e-9)


def test_within_sky_finds_the_rows_inside_the_radius_nearest_first() -> None:
    ra, dec = np.array([150.0, 150.0 + 1 / 3600, 150.0, 150.0 + 5 / 3600, 30.0]), np.array([2.0, 2.0, 2.0 + 2 / 3600, 2.0, 2.0])
    index = MapIndex(np.zeros(5), np.zeros(5), ra, dec)
    rows, separations = index.within_sky(150.0, 2.0, 3.0)
    np.testing.assert_array_equal(rows, [0, 1, 2])
    np.testing.assert_allclose(separations, [0.0, math.cos(math.radians(2.0)), 2.0], rtol=1e-6, atol=1e-9)


# -- selections, search, similar -------------------------------------------------------------------

def test_combine_modes() -> None:
    current, new = np.array([1, 3, 5, 7]), np.array([7, 2, 3, 2])
    np.testing.assert_array_equal(combine(current, new, "replace"), [2, 3, 7])
    np.testing.assert_array_equal(combine(current, new, "add"), [1, 2, 3, 5, 7])
    np.testing.assert_array_equal(combine(current, new, "subtract"), [1, 5])
    np.testing.assert_array_equal(combine(np.empty(0), new, "subtract"), [])
    assert combine(current, new, "add").dtype == np.int64
    with pytest.raises(ValueError, match="replace, add, subtract"):
        combine(current, new, "xor")


@pytest.mark.parametrize("text, ra, dec", [
    ("150.1 2.2", 150.1, 2.2),
    ("150.1, +2.2", 150.1, 2.2),
    ("150.1,-2.2", 150.1, -2.2),
    ("10h00m24s +02d12m00s", 150.1, 2.2),
    ("10:00:24.0 +02:12:00", 150.1, 2.2),
    ("10:00:24.0, -02:12:00", 150.1, -2.2),
    ("10 00 24.0 -00 30 00", 150.1, -0.5),
    ("23:59:59.9 -89:59:59", 359.999583333, -89.999722222),
    ("0 -90", 0.0, -90.0),
])
def test_parse_position_reads_the_listed_forms(text, ra, dec) -> None:
    got = parse_position(text)
    assert got == pytest.approx((ra, dec), abs=1e-8)


@pytest.mark.parametrize("text, why", [
    ("hello", "1 part"),
    ("150", "1 part"),
    ("1 2 3", "3 parts"),
    ("400 2", "RA 400 deg is outside"),
    ("-10 2", "RA -10 deg is outside"),
    ("150 95", "Dec 95 deg is outside"),
    ("25:00:00 +02:00:00", "hours"),
    ("10:60:00 +02:00:00", "60 or more"),
    ("10:00:00 +02:00:61", "60 or more"),
    ("nan nan", "nan"),
    ("", "0 parts"),
])
def test_parse_position_says_why_and_what_is_expected(text, why) -> None:
    with pytest.raises(GalexploreError) as error:
        parse_position(text)
    message = str(error.value)
    assert repr(text) in message and why in message
    assert "10h00m24s +02d12m00s" in message and "150.1 2.2" in message


@pytest.fixture(scope="module")
def small_catalog() -> pd.DataFrame:
    ra, dec = sky_points(200)
    rng = np.random.default_rng(2)
    return pd.DataFrame({
        "object_id": np.arange(1000, 1200), "ra": ra, "dec": dec,
        "z_spec": np.where(rng.uniform(size=200) < 0.4, rng.uniform(0, 0.3, 200), np.nan),
        "type": rng.choice(["elliptical", "spiral", "irregular"], 200),
        "label_availability": pd.Categorical(rng.choice(["none", "spec-z", "spec-z+morphology"], 200)),
        "is_anomaly": rng.uniform(size=200) < 0.1,
        "n_votes": rng.integers(0, 40, 200).astype(np.int32),
        "trust": rng.uniform(size=200).astype(np.float32),
        "umap_x": rng.normal(size=200).astype(np.float32), "umap_y": rng.normal(size=200).astype(np.float32),
    })


def _index_of(catalog: pd.DataFrame) -> MapIndex:
    return MapIndex(*(catalog[c].to_numpy() for c in ("umap_x", "umap_y", "ra", "dec")))


def test_find_by_int_object_id_then_by_position(small_catalog) -> None:
    index = _index_of(small_catalog)
    assert find(small_catalog, index, " 1042 ") == {"row": 42, "separation_arcsec": None, "how": "object_id"}
    ra, dec = small_catalog["ra"].iloc[150], small_catalog["dec"].iloc[150]
    hit = find(small_catalog, index, f"{ra:.9f} {dec:+.9f}")
    assert hit["how"] == "position" and hit["row"] == 150 and hit["separation_arcsec"] < 0.01
    # an int that is no id, and not a position either
    with pytest.raises(GalexploreError, match=r"no galaxy with object_id '5', and not a position"):
        find(small_catalog, index, "5")


def test_find_by_str_object_id_compares_text(small_catalog) -> None:
    catalog = small_catalog.assign(object_id=[f"J{k:04d}" for k in range(200)])
    catalog.loc[7, "object_id"] = "0042"  # leading zeros: a string id is never read as a number
    index = _index_of(catalog)
    assert find(catalog, index, "J0123")["row"] == 123
    assert find(catalog, index, "0042")["row"] == 7
    with pytest.raises(GalexploreError, match="no galaxy with object_id '42'"):
        find(catalog, index, "42")
    with pytest.raises(GalexploreError, match="type an object_id or a position"):
        find(catalog, index, "   ")


def test_similar_gives_the_first_k_best_first() -> None:
    neighbors = np.array([[3, 1, 2], [0, 2, -1], [1, 0, 3], [0, 2, 1]], np.int32)
    similarities = np.array([[0.9, 0.5, 0.1], [0.8, 0.7, 0.0], [0.6, 0.5, 0.4], [0.9, 0.8, 0.7]], np.float16)
    rows, sims = similar(neighbors, similarities, 0, 2)
    np.testing.assert_array_equal(rows, [3, 1])
    assert sims.dtype == np.float32 and sims == pytest.approx([0.9, 0.5], abs=1e-3)
    rows, sims = similar(neighbors, similarities, 1, 10)  # more than kept; the -1 pad dropped
    np.testing.assert_array_equal(rows, [0, 2])
    with pytest.raises(GalexploreError, match="outside"):
        similar(neighbors, similarities, 4, 2)


def test_sky_links_point_at_the_position() -> None:
    links = sky_links(150.1, -2.2)
    assert links["SDSS SkyServer"] == \
        "https://skyserver.sdss.org/dr18/VisualTools/navi?ra=150.100000&dec=-2.200000&scale=0.2"
    assert links["Legacy Surveys"] == \
        "https://www.legacysurvey.org/viewer?ra=150.100000&dec=-2.200000&layer=ls-dr10&zoom=16"
    assert "%2B" not in sky_links(1.0, 2.0)["Legacy Surveys"] and "+" not in sky_links(1.0, 2.0)["Legacy Surveys"]
    north = sky_links(1.0, 2.0, hips="CDS/P/DESI-Legacy-Surveys/DR10/color")
    assert north["Aladin Lite"] == ("https://aladin.cds.unistra.fr/AladinLite/?target=1.000000%202.000000&fov=0.02"
                                    "&survey=CDS%2FP%2FDESI-Legacy-Surveys%2FDR10%2Fcolor")
    assert "Coord=1.000000%202.000000&Radius=10&Radius.unit=arcsec" in north["SIMBAD"]
    assert "lon=1.000000d&lat=2.000000d&radius=0.1667" in north["NED"]
    assert "survey=CDS%2FP%2FSDSS9%2Fcolor" in links["Aladin Lite"] and "lat=-2.200000d" in links["NED"]


# -- export ----------------------------------------------------------------------------------------

def _read_back(data: bytes, fmt: str) -> pd.DataFrame:
    """The exported file as a DataFrame: astropy for csv/fits/votable, pandas for parquet."""
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(data))
    table = Table.read(io.BytesIO(data), format={"csv": "ascii.csv", "fits": "fits", "votable": "votable"}[fmt])
    table.convert_bytestring_to_unicode()  # FITS text comes back as bytes (UTF-8 beyond ASCII)
    frame = {}
    for name in table.colnames:
        column = table[name]
        if column.dtype.kind in "SU":
            values = np.asarray(column.filled("") if hasattr(column, "filled") else column).astype(str)
            frame[name] = values
        elif hasattr(column, "filled"):
            frame[name] = column.filled(np.nan) if column.dtype.kind == "f" else column.filled(0)
        else:
            frame[name] = np.asarray(column)
    return pd.DataFrame(frame)


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_export_round_trips_row_by_row(small_catalog, fmt) -> None:
    catalog = small_catalog.iloc[:, ::-1]  # object_id, ra, dec come first whatever the catalog's order
    rows = np.array([3, 0, 17, 42, 199, 150, 151])
    data = export_selection(catalog, rows, fmt)
    back = _read_back(data, fmt)
    expected = small_catalog.iloc[rows].reset_index(drop=True)
    assert list(back.columns[:3]) == ["object_id", "ra", "dec"]
    assert set(back.columns) == set(catalog.columns) and len(back) == len(rows)
    np.testing.assert_array_equal(back["object_id"], expected["object_id"])
    np.testing.assert_allclose(back["ra"], expected["ra"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(back["dec"], expected["dec"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(back["z_spec"], expected["z_spec"], rtol=1e-15, equal_nan=True)
    assert np.isnan(back["z_spec"]).sum() == expected["z_spec"].isna().sum() > 0
    np.testing.assert_allclose(back["trust"], expected["trust"], rtol=1e-7)
    np.testing.assert_array_equal(back["n_votes"], expected["n_votes"])
    assert list(back["type"].astype(str)) == list(expected["type"])
    assert list(back["label_availability"].astype(str)) == list(expected["label_availability"].astype(str))
    assert [str(v).lower() for v in back["is_anomaly"]] == [str(v).lower() for v in expected["is_anomaly"]]
    if fmt == "parquet":
        assert isinstance(back["label_availability"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("fmt", ["fits", "votable", "parquet"])
def test_export_keeps_text_ids_missing_text_and_nullable_ints(small_catalog, fmt) -> None:
    catalog = small_catalog.assign(
        object_id=[f"{k:05d}" for k in range(200)],
        type=small_catalog["type"].where(np.arange(200) % 3 != 0, None).astype("string"),
        n_votes=pd.array(np.where(np.arange(200) % 4 == 0, None, np.arange(200)), dtype="Int64"),
        note=["über" if k % 2 else "" for k in range(200)],  # not ASCII
    )
    back = _read_back(export_selection(catalog, np.arange(12), fmt), fmt)
    assert list(back["object_id"]) == [f"{k:05d}" for k in range(12)]
    assert list(back["type"].fillna("")) == list(catalog["type"].iloc[:12].fillna(""))
    assert list(back["note"]) == list(catalog["note"].iloc[:12])
    assert [int(v) for v in back["n_votes"].to_numpy()[1::4]] == [1, 5, 9]


def test_votable_is_the_file_astropy_writes(small_catalog) -> None:
    """The column-at-a-time BINARY2 stream is byte for byte astropy's own (cell-at-a-time) one."""
    catalog = small_catalog.assign(
        n_votes=pd.array(np.where(np.arange(200) % 4 == 0, None, np.arange(200)), dtype="Int64"),
        type=small_catalog["type"].where(np.arange(200) % 3 != 0, None),
        flag=pd.array(np.where(np.arange(200) % 5 == 0, None, np.arange(200) % 2 == 0), dtype="boolean"),
        small=np.arange(200, dtype=np.int16), byte=np.arange(200, dtype=np.uint8),
    )
    rows = np.arange(0, 200, 3)
    ours = export_selection(catalog, rows, "votable")
    columns = ["object_id", "ra", "dec"] + [c for c in catalog.columns if c not in ("object_id", "ra", "dec")]
    reference = io.BytesIO()
    _votable(_astropy_table(catalog.iloc[rows][columns].reset_index(drop=True), text_as_bytes=False)).to_xml(reference)
    assert ours == reference.getvalue()
    assert b"<BINARY2>" in ours and b'datatype="boolean"' in ours


def test_export_of_an_empty_selection_or_an_unknown_format_is_refused(small_catalog) -> None:
    with pytest.raises(GalexploreError, match="the selection is empty: nothing to export"):
        export_selection(small_catalog, np.empty(0, np.int64), "csv")
    with pytest.raises(GalexploreError, match="format 'xlsx'; expected one of csv, fits, votable, parquet"):
        export_selection(small_catalog, np.arange(3), "xlsx")
    with pytest.raises(GalexploreError, match="row 200 is outside"):
        export_selection(small_catalog, np.array([1, 200]), "csv")


@pytest.mark.parametrize("name, stem", [
    ("demo", "demo"),
    ("../../etc/passwd", "etc_passwd"),
    ("<script>alert(1)</script>", "script_alert_1_script"),
    ("..", "atlas"),
    ("C:\\Users\\x y", "C_Users_x_y"),
    ("\x00naïve\n", "na_ve"),
])
def test_export_name_is_a_plain_file_name(name, stem) -> None:
    when = datetime.datetime(2026, 11, 29, 11, 15, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    for fmt, (suffix, _) in EXPORT_FORMATS.items():
        got = export_name(name, fmt, when)
        assert got == f"{stem}-selection-20261129T101500Z{suffix}"
        assert re.fullmatch(r"[A-Za-z0-9._-]+", got) and not got.startswith(".")


# -- cutouts ---------------------------------------------------------------------------------------

def test_cutouts_are_the_lupton_composites_of_the_survey(survey_atlas) -> None:
    atlas_path, survey_path = survey_atlas
    cutouts = CutoutSource(open_atlas(atlas_path, require=()))
    assert cutouts.available and cutouts.reason is None and cutouts.bands == ("u", "g", "r", "i", "z")
    with open_path(survey_path) as survey:
        expected = lupton_rgb(survey[4], survey.bands)  # (32, 32, 3)
    native = Image.open(io.BytesIO(cutouts.rgb_png(4, size=32)))
    assert native.format == "PNG" and native.size == (32, 32) and native.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(native), expected)  # one code path, lossless
    big = Image.open(io.BytesIO(cutouts.rgb_png(4, size=96)))
    assert big.size == (96, 96)
    np.testing.assert_array_equal(np.asarray(big)[::3, ::3], expected)  # enlarged pixel-true
    assert Image.open(io.BytesIO(cutouts.rgb_png(4, size=20))).size == (20, 20)
    gallery = cutouts.rgb_pngs([5, 4, 0], size=96)
    assert gallery[1] == cutouts.rgb_png(4, size=96)


def test_tile_cutouts_are_the_gallery_composites_as_arrays(survey_atlas) -> None:
    atlas_path, survey_path = survey_atlas
    cutouts = CutoutSource(open_atlas(atlas_path, require=()))
    with open_path(survey_path) as survey:
        expected = lupton_rgb(survey[3], survey.bands)
    tiles = cutouts.rgb_arrays([3, 1], size=32)
    assert [t.shape for t in tiles] == [(32, 32, 3)] * 2 and tiles[0].dtype == np.uint8
    np.testing.assert_array_equal(tiles[0], expected)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(cutouts.rgb_png(1, size=48)))),
                                  cutouts.rgb_arrays([1], size=48)[0])


def test_band_cutouts_are_grey_images_one_per_band(survey_atlas) -> None:
    cutouts = CutoutSource(open_atlas(survey_atlas[0], require=()))
    bands = cutouts.band_pngs(2, size=64)
    assert list(bands) == ["u", "g", "r", "i", "z"]
    images = [Image.open(io.BytesIO(png)) for png in bands.values()]
    assert all(im.format == "PNG" and im.size == (64, 64) and im.mode == "L" for im in images)
    assert len({np.asarray(im).tobytes() for im in images}) == 5  # five different bands


def test_no_cutouts_without_a_survey(survey_atlas, tmp_path) -> None:
    writer = AtlasWriter(tmp_path / "from-embeddings", "emb")
    writer.write_catalog(pd.DataFrame({"object_id": [1, 2], "ra": [1.0, 2.0], "dec": [0.0, 0.0]}))
    cutouts = CutoutSource(open_atlas(tmp_path / "from-embeddings", require=()))
    assert not cutouts.available and "embeddings" in cutouts.reason
    assert cutouts.rgb_png(0) is None and cutouts.band_pngs(1) is None and cutouts.rgb_pngs([0, 1]) is None
    # an atlas whose survey file is gone
    atlas_path, survey_path = survey_atlas
    moved = tmp_path / "moved.h5"
    shutil.copy(survey_path, moved)
    survey_path.unlink()
    try:
        gone = CutoutSource(open_atlas(atlas_path, require=()))
        assert gone.rgb_png(0) is None and "gone" in gone.reason
    finally:
        shutil.copy(moved, survey_path)
