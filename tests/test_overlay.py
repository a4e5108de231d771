"""Catalogue overlays: read in every export format, matched by position as astropy's
`match_to_catalog_sky` matches, or by id; bad catalogues refused with a message naming the file
and the column; the layer's columns one per atlas row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galexplore.atlas.export import EXPORT_FORMATS, export_selection
from galexplore.errors import GalexploreError
from galexplore.explorer.overlay import match_overlay, overlay_name, read_overlay
from galexplore.explorer.queries import MapIndex


@pytest.fixture(scope="module")
def atlas() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 5000
    return pd.DataFrame({"object_id": np.arange(10_000, 10_000 + n), "ra": rng.uniform(0, 360, n),
                         "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n)))})


@pytest.fixture(scope="module")
def index(atlas: pd.DataFrame) -> MapIndex:
    return MapIndex(np.zeros(len(atlas)), np.zeros(len(atlas)), atlas["ra"], atlas["dec"])


def _offset(atlas: pd.DataFrame, rows: np.ndarray, arcsec: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Positions `arcsec` away from the atlas rows `rows`, in random directions."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    angle = np.random.default_rng(seed).uniform(0, 360, len(rows))
    moved = SkyCoord(atlas["ra"].to_numpy()[rows], atlas["dec"].to_numpy()[rows], unit="deg").directional_offset_by(
        angle * u.deg, arcsec * u.arcsec)
    return pd.DataFrame({"RA": moved.ra.deg, "Dec": moved.dec.deg})


def test_matches_as_astropy_match_to_catalog_sky(atlas, index) -> None:
    from astropy.coordinates import SkyCoord

    rows = np.arange(0, 400, 2)
    mine = _offset(atlas, rows, np.linspace(0.0, 3.0, len(rows)))
    mine["kind"] = ["lens"] * len(mine)
    match = match_overlay(mine, "lenses", atlas, index, radius_arcsec=1.5)
    theirs, sep, _ = SkyCoord(mine["RA"], mine["Dec"], unit="deg").match_to_catalog_sky(
        SkyCoord(atlas["ra"], atlas["dec"], unit="deg"))
    within = np.flatnonzero(sep.arcsec <= 1.5)
    np.testing.assert_array_equal(match.overlay_rows, within)
    np.testing.assert_array_equal(match.atlas_rows, theirs[within])
    np.testing.assert_allclose(match.separations, sep.arcsec[within], atol=1e-6)
    assert match.by == "position" and match.n_unmatched == len(mine) - len(within)
    assert match.summary().startswith(f"lenses: {len(within)} of 200 rows matched within 1.5\" (median ")

    columns = match.columns(len(atlas))
    assert list(columns.columns) == ["in_lenses", "lenses_kind", "lenses_sep_arcsec"]
    assert columns["in_lenses"].sum() == len(within)
    np.testing.assert_array_equal(np.flatnonzero(columns["in_lenses"]), np.sort(theirs[within]))
    assert set(columns["lenses_kind"].dropna()) == {"lens"} and columns["lenses_kind"].notna().sum() == len(within)


def test_every_export_format_and_sexagesimal_positions_read(atlas, index) -> None:
    rows = np.array([5, 17, 99])
    for fmt, spec in EXPORT_FORMATS.items():
        table = read_overlay(export_selection(atlas, rows, fmt), f"mine{spec.suffix}")
        match = match_overlay(table, overlay_name(f"mine{spec.suffix}"), atlas, index)
        np.testing.assert_array_equal(match.atlas_rows, rows, err_msg=fmt)
        assert match.by == "position" and match.separations.max() < 1e-3
    from astropy.coordinates import Angle

    text = pd.DataFrame({"RAJ2000": Angle(atlas["ra"].iloc[rows], unit="deg").to_string(unit="hourangle", sep=":", precision=3),
                         "DEJ2000": Angle(atlas["dec"].iloc[rows], unit="deg").to_string(unit="deg", sep=":", precision=2)})
    match = match_overlay(text, "sexa", atlas, index)
    np.testing.assert_array_equal(match.atlas_rows, rows)
    assert match.separations.max() < 0.1


def test_by_id_and_several_rows_on_one_galaxy(atlas, index) -> None:
    ids = pd.DataFrame({"objid": [10_003, 10_003, 99, 10_010], "note": ["a", "b", "c", "d"]})
    match = match_overlay(ids, "mine", atlas, index)
    assert match.by == "id" and match.separations is None
    np.testing.assert_array_equal(match.overlay_rows, [0, 1, 3])
    np.testing.assert_array_equal(match.rows, [3, 10])
    columns = match.columns(len(atlas))
    assert columns.loc[3, "mine_note"] == "a" and columns.loc[10, "mine_note"] == "d"  # the first row for a galaxy
    assert match.summary() == "mine: 3 of 4 rows matched by object_id, 1 unmatched"
    # ids as text match integer ids
    text = match_overlay(pd.DataFrame({"object_id": [" 10003", "10004"]}), "t", atlas, index)
    np.testing.assert_array_equal(text.atlas_rows, [3, 4])


def test_closest_of_several_rows_wins_by_position(atlas, index) -> None:
    mine = pd.concat([_offset(atlas, np.array([7]), np.array([1.0])), _offset(atlas, np.array([7]), np.array([0.2]))],
                     ignore_index=True)
    mine["z"] = [0.5, 0.1]
    columns = match_overlay(mine, "pair", atlas, index).columns(len(atlas))
    assert columns.loc[7, "pair_z"] == 0.1 and columns.loc[7, "pair_sep_arcsec"] == pytest.approx(0.2, abs=1e-6)


@pytest.mark.parametrize("data, name, message", [
    (b"a,b\n1,2\n", "x.csv", "x.csv: no position or id columns; expected RA and Dec"),
    (b"ra,dec\n", "empty.csv", "empty.csv: the catalog has no rows"),
    (b"ra,dec\n1,2\n", "x.txt", "x.txt: unknown catalog format '.txt'"),
])
def test_bad_catalogues_are_refused_with_their_name(data, name, message) -> None:
    with pytest.raises(GalexploreError, match=message.replace(".", r"\.").replace("(", r"\(")):
        read_overlay(data, name)


def test_unparseable_and_out_of_range_positions_and_limits(atlas, index) -> None:
    with pytest.raises(GalexploreError, match=r"bad: column 'ra' row 1 is 'north'; expected degrees or sexagesimal"):
        match_overlay(pd.DataFrame({"ra": ["10.0", "north"], "dec": [1.0, 2.0]}), "bad", atlas, index)
    with pytest.raises(GalexploreError, match=r"column 'dec' row 0 is 95.0; expected -90.0 to 90.0 degrees"):
        match_overlay(pd.DataFrame({"ra": [10.0], "dec": [95.0]}), "bad", atlas, index)
    with pytest.raises(GalexploreError, match="big.csv: 3 rows; an overlay may have at most 2"):
        read_overlay(b"ra,dec\n1,1\n2,2\n3,3\n", "big.csv", max_rows=2)
    with pytest.raises(GalexploreError, match="expected a finite radius > 0"):
        match_overlay(pd.DataFrame({"ra": [1.0], "dec": [1.0]}), "r", atlas, index, radius_arcsec=0)
    no_sky = MapIndex(np.zeros(3), np.zeros(3), np.full(3, np.nan), np.full(3, np.nan))
    with pytest.raises(GalexploreError, match="the atlas has no sky positions, and no object_id column"):
        match_overlay(pd.DataFrame({"ra": [1.0], "dec": [1.0]}), "r", atlas.iloc[:3], no_sky)


def test_overlay_names_are_identifiers() -> None:
    assert overlay_name("path/to/Known Lenses.fits") == "known_lenses"
    assert overlay_name("???.csv") == "overlay"
