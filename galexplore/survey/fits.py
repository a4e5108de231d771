"""FITS surveys: one stacked cube, a folder of one cube per object, or a single cube.

Three layouts, told apart by what `path` is::

    stacked   cube.fits      image HDU (N, C, H, W); catalog: the first table HDU of the same file,
                             or a separate FITS/CSV catalog (survey.catalog)
    folder    folder/        one (C, H, W) cube per object, named by the catalog's `file` column
                             (survey.file_column) relative to the folder; catalog: survey.catalog,
                             else folder/catalog.fits or folder/catalog.csv
    single    object.fits    one (C, H, W) cube (or (H, W) image) and no catalog: one object at
                             the position in its header or its file name

The image is the first HDU with data (the primary HDU, or the first extension as in compressed
``.fz`` files); numpy order (N, C, H, W) is FITS order NAXIS4..NAXIS1. Band names come from
survey.bands, or when that is empty from the header (``BANDS = 'g,r,i'`` or ``FILTER1..n``),
else ``b0..b<C-1>``. The pixel scale comes from a celestial WCS when there is one.

Nothing is loaded at open beyond the catalog and headers: pixels are read on demand through
astropy's lazy ``section`` (memory-mapped for plain files). In the folder layout only the first
file's header is read at open; every other file is checked as it is read, and a file of another
shape, a missing or a corrupt one is reported with its catalog row.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from astropy.io import fits

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError
from galexplore.io import check_regular_file
from galexplore.survey.base import Survey, check_catalog, check_cutout_shape
from galexplore.survey.catalogs import (
    catalog_positions,
    file_names,
    read_catalog_file,
    table_to_frame,
)
from galexplore.survey.coords import parse_position_from_filename
from galexplore.survey.handles import ProcessLocalFile

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS

#: header keyword pairs read as an object's RA/Dec (degrees, or sexagesimal strings)
POSITION_KEYWORDS = (("RA", "DEC"), ("RA_OBJ", "DEC_OBJ"), ("OBJRA", "OBJDEC"))


class FitsSurvey(Survey):
    """FITS cutouts: a stacked (N, C, H, W) cube, a folder of (C, H, W) cubes, or one cube."""

    def __init__(self, path: str | Path, config: SurveyConfig | None = None, catalog: str | Path | None = None) -> None:
        cfg = config or SurveyConfig(source="fits", bands=())
        self.path = Path(path)
        self.source = str(self.path)
        self.nonfinite = cfg.nonfinite
        self.nonfinite_masked = 0
        self._file = _fits_file(self.path, memmap=True)
        self._hdu_index = 0
        self._files: np.ndarray | None = None  # folder layout: one file per object
        catalog_path = Path(catalog) if catalog is not None else None
        try:
            self._open_any(cfg, catalog_path)
        except BaseException:
            self.close()  # a file that fails validation is not left open
            raise

    # -- opening -------------------------------------------------------------------------------

    def _open_any(self, cfg: SurveyConfig, catalog_path: Path | None) -> None:
        if self.path.is_dir():
            self.layout = "folder"
            self._open_folder(cfg, catalog_path)
        elif self.path.is_file():
            self._open_file(cfg, catalog_path)
        else:
            raise SurveyError(f"{self.path}: no such file or folder")
        check_cutout_shape(self.shape, self.source)
        if self.shape[1] != self.shape[2]:
            raise SurveyError(f"{self.source}: cutouts are {self.shape[1]}x{self.shape[2]} pixels; expected square cutouts")
        if cfg.image_size and self.shape[1:] != (cfg.image_size, cfg.image_size):
            raise SurveyError(
                f"{self.source}: cutouts are {self.shape[1]}x{self.shape[2]} pixels; the config "
                f"(survey.image_size) expects {cfg.image_size}x{cfg.image_size}"
            )

    def _open_file(self, cfg: SurveyConfig, catalog_path: Path | None) -> None:
        hdul = self._file.get()
        self._hdu_index, hdu = _image_hdu(hdul, self.source)
        if _scaled(hdu.header):
            # astropy cannot memory-map scaled integers; read them through plain file reads.
            self.close()
            self._file = _fits_file(self.path, memmap=False)
            hdul = self._file.get()
            hdu = hdul[self._hdu_index]
        dims = tuple(int(d) for d in hdu.shape)
        header = hdu.header
        if len(dims) == 4:
            self.layout = "stacked"
            n, self.shape = dims[0], dims[1:]
        elif len(dims) in (2, 3):
            self.layout = "single"
            n, self.shape = 1, (1, *dims) if len(dims) == 2 else dims
        else:
            raise SurveyError(
                f"{self.source}: image HDU {self._hdu_index} has shape {dims}; expected (N, C, H, W), "
                f"(C, H, W) or (H, W)"
            )
        self.bands = _bands(header, cfg, self.shape[0], self.source)
        self.pixel_scale = _wcs_pixel_scale(header) or cfg.pixel_scale

        if catalog_path is not None:
            where = str(catalog_path)
            table = read_catalog_file(catalog_path, text_columns=(cfg.name_column,))
        elif any(isinstance(h, (fits.BinTableHDU, fits.TableHDU)) for h in hdul):
            where = f"{self.source} (table HDU)"
            table = _first_table(hdul)
        elif self.layout == "single":
            where = self.source
            table = _single_catalog(self.path, header, self.source, cfg.positions)
        else:
            raise SurveyError(
                f"{self.source}: a stacked cube of {n} cutouts with no catalog; expected a table HDU "
                f"in the file or a FITS/CSV catalog (survey.catalog)"
            )
        catalog = catalog_positions(table_to_frame(table, self.bands), cfg, where)
        self.catalog = check_catalog(catalog, n, where, cfg.positions)

    def _open_folder(self, cfg: SurveyConfig, catalog_path: Path | None) -> None:
        if catalog_path is None:
            found = [self.path / name for name in ("catalog.fits", "catalog.csv") if (self.path / name).exists()]
            if not found:
                raise SurveyError(
                    f"{self.path}: a folder of FITS cubes needs a catalog: survey.catalog, or "
                    f"catalog.fits / catalog.csv in the folder"
                )
            catalog_path = found[0]
        self.catalog_path = catalog_path
        where = str(catalog_path)
        table = read_catalog_file(catalog_path, text_columns=(cfg.file_column, cfg.name_column))
        self._files = file_names(table, cfg.file_column, where)
        if not len(self._files):
            raise SurveyError(f"{where}: the catalog has no rows; expected one row per FITS file")
        # Only the first file's header is read at open; the others are checked when read.
        first = self.path / self._files[0]
        check_regular_file(first, "a FITS file", SurveyError, f"{first} (catalog row 0, {catalog_path.name})")
        try:
            with fits.open(first, memmap=True, lazy_load_hdus=True) as hdul:
                index, hdu = _image_hdu(hdul, f"{first} (catalog row 0)")
                dims = tuple(int(d) for d in hdu.shape)
                header = hdu.header.copy()
        except FileNotFoundError:
            raise SurveyError(f"{first} (catalog row 0, {catalog_path.name}): FITS file not found") from None
        except OSError as exc:
            raise SurveyError(f"{first} (catalog row 0): not a readable FITS file ({exc})") from None
        if len(dims) not in (2, 3):
            raise SurveyError(
                f"{first} (catalog row 0): image has shape {dims}; expected one object's (C, H, W) cube or (H, W) image"
            )
        self.shape = (1, *dims) if len(dims) == 2 else dims
        self.bands = _bands(header, cfg, self.shape[0], str(first))
        self.pixel_scale = _wcs_pixel_scale(header) or cfg.pixel_scale
        catalog = catalog_positions(table_to_frame(table, self.bands), cfg, where)
        self.catalog = check_catalog(catalog, len(self._files), where, cfg.positions)

    # -- reading -------------------------------------------------------------------------------

    def _read(self, indices: np.ndarray) -> np.ndarray:
        if self.layout == "folder":
            out = np.empty((len(indices), *self.shape), dtype=np.float32)  # (B, C, H, W)
            for k, row in enumerate(indices):
                out[k] = self._read_file(int(row))
            return out
        section = self._file.get()[self._hdu_index].section
        if self.layout == "single":
            return np.repeat(np.asarray(section[...], dtype=np.float32).reshape(1, *self.shape), len(indices), axis=0)
        # Stacked: read sorted contiguous runs of rows, then put them back in the order asked.
        order = np.argsort(indices, kind="stable")
        unique, inverse = np.unique(indices[order], return_inverse=True)
        runs = np.split(unique, np.flatnonzero(np.diff(unique) != 1) + 1)
        try:
            parts = [np.asarray(section[run[0] : run[-1] + 1], dtype=np.float32) for run in runs if run.size]
        except (OSError, ValueError, IndexError) as exc:
            raise SurveyError(
                f"{self.source}: cannot read cutout rows {unique[0]}..{unique[-1]} ({exc}); the file "
                f"may be truncated"
            ) from None
        block = np.concatenate(parts) if parts else np.empty((0, *self.shape), np.float32)
        out = np.empty((len(indices), *self.shape), dtype=np.float32)
        out[order] = block[inverse]
        return out

    def _read_file(self, row: int) -> np.ndarray:
        """One object's cube from its own file, float32 (C, H, W), checked against the survey."""
        file = self.path / self._files[row]
        where = f"{file} (catalog row {row}, {self.catalog_path.name})"
        check_regular_file(file, "a FITS file", SurveyError, where)
        try:
            # memmap=False: one small cube is read whole, and scaled integers cannot be mapped.
            with fits.open(file, memmap=False, lazy_load_hdus=True) as hdul:
                _, hdu = _image_hdu(hdul, where)
                dims = tuple(int(d) for d in hdu.shape)
                shape = (1, *dims) if len(dims) == 2 else dims
                if shape != self.shape:
                    raise SurveyError(
                        f"{where}: cube has shape {dims}; expected {self.shape} (C, H, W) like the first file"
                    )
                return np.asarray(hdu.section[...], dtype=np.float32).reshape(self.shape)
        except FileNotFoundError:
            raise SurveyError(f"{where}: FITS file not found") from None
        except (OSError, ValueError, IndexError) as exc:
            raise SurveyError(f"{where}: not a readable FITS file ({exc})") from None

    def close(self) -> None:
        self._file.close()


def _fits_file(path: Path, memmap: bool) -> ProcessLocalFile[fits.HDUList]:
    """The stacked or single FITS file, opened once per process (safe after fork)."""
    opener = functools.partial(fits.open, path, memmap=memmap, lazy_load_hdus=True)
    return ProcessLocalFile(opener, "FITS", str(path))


def _image_hdu(hdul: fits.HDUList, where: str) -> tuple[int, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU]:
    """The first HDU holding an image (NAXIS > 0), without reading its pixels."""
    for index, hdu in enumerate(hdul):
        if hdu.is_image and hdu.header.get("NAXIS", 0) > 0:
            return index, hdu
    raise SurveyError(f"{where}: no image HDU; expected a FITS image (N, C, H, W), (C, H, W) or (H, W)")


def _scaled(header: fits.Header) -> bool:
    """Whether pixels are stored scaled (integers with BSCALE/BZERO, or with BLANK)."""
    return any(key in header for key in ("BSCALE", "BZERO", "BLANK"))


def _first_table(hdul: fits.HDUList) -> Table:
    from astropy.table import Table

    hdu = next(h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU)))
    return Table.read(hdu)


def _header_bands(header: fits.Header, channels: int) -> tuple[str, ...] | None:
    """Band names stated in a header: BANDS = 'g,r,i' or FILTER1..FILTERn; None when absent."""
    if "BANDS" in header:
        text = str(header["BANDS"]).replace(",", " ").split()
        return tuple(text)
    filters = [header.get(f"FILTER{j + 1}") for j in range(channels)]
    if all(f is not None for f in filters):
        return tuple(str(f).strip() for f in filters)
    return None


def _bands(header: fits.Header, cfg: SurveyConfig, channels: int, source: str) -> tuple[str, ...]:
    stated = _header_bands(header, channels)
    if cfg.bands:
        bands = tuple(cfg.bands)
        if len(bands) != channels:
            raise SurveyError(
                f"{source}: cutouts have {channels} bands; the config (survey.bands) lists "
                f"{len(bands)}: {','.join(bands)}"
            )
        if stated is not None and stated != bands:
            raise SurveyError(
                f"{source}: the header's bands are {','.join(stated)}; the config (survey.bands) "
                f"says {','.join(bands)}"
            )
        return bands
    if stated is not None:
        if len(stated) != channels:
            raise SurveyError(
                f"{source}: cutouts have {channels} bands but the header names {len(stated)}: "
                f"{','.join(stated)}"
            )
        return stated
    return tuple(f"b{j}" for j in range(channels))


def _celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial part of a header's WCS, or None when it has none."""
    from astropy.wcs import WCS, FITSFixedWarning

    if "CTYPE1" not in header:
        return None
    try:
        with warnings.catch_warnings():
            # astropy notes every header fix it makes (e.g. MJD-OBS from DATE-OBS); not our concern.
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header).celestial
    except (ValueError, KeyError, MemoryError):
        return None
    return wcs if wcs.naxis == 2 and wcs.has_celestial else None


def _wcs_pixel_scale(header: fits.Header) -> float | None:
    """Arcsec per pixel from a celestial WCS (the mean of both axes), else None."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    wcs = _celestial_wcs(header)
    if wcs is None:
        return None
    scales = proj_plane_pixel_scales(wcs)  # degrees per pixel, both axes
    return float(np.mean(scales) * 3600.0)


def _header_position(header: fits.Header, source: str) -> tuple[float, float] | None:
    """(ra, dec) in degrees from RA/DEC-like keywords (numbers in degrees or sexagesimal)."""
    from astropy.coordinates import Angle

    for ra_key, dec_key in POSITION_KEYWORDS:
        if ra_key in header and dec_key in header:
            ra, dec = header[ra_key], header[dec_key]
            try:
                if isinstance(ra, str):  # "10:00:57.77" is hours; a plain number string is degrees
                    ra = Angle(ra, unit="hourangle" if (":" in ra or " " in ra.strip()) else "deg").degree
                    dec = Angle(str(dec), unit="deg").degree
                return float(ra), float(dec)
            except (ValueError, TypeError):
                raise SurveyError(
                    f"{source}: header {ra_key} = {header[ra_key]!r}, {dec_key} = {header[dec_key]!r}; "
                    f"expected degrees or sexagesimal RA/Dec"
                ) from None
    return None


def _single_catalog(path: Path, header: fits.Header, source: str, positions: str = "catalog") -> pd.DataFrame:
    """The one-row catalog of a single cube: its position from the header, WCS or file name
    (none with `positions` "none", survey.positions).

    The WCS position is that of the cutout's centre, not CRVAL1/2: a cutout's reference pixel
    is often far outside it (the HSC scenes' is 0.17 degrees away).
    """
    if positions == "none":
        return pd.DataFrame({"object_id": [0], "file": [path.name]})
    position = _header_position(header, source)
    if position is None:
        wcs = _celestial_wcs(header)
        if wcs is not None:
            ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
            centre = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
            position = (float(centre.icrs.ra.deg), float(centre.icrs.dec.deg))
    if position is None:
        position = parse_position_from_filename(path.name)
    if position is None:
        raise SurveyError(
            f"{source}: no position for this single cube: expected RA/DEC header keywords, a "
            f"celestial WCS or a file name like 'hsc_ra=150.24071_dec=2.06514.fits'"
        )
    return pd.DataFrame({"object_id": [0], "ra": [position[0]], "dec": [position[1]], "file": [path.name]})
