"""Survey readers: HDF5, FITS, image folders and in-memory arrays behind one `Survey` interface."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from galexplore.config import Config, SurveyConfig
from galexplore.errors import SurveyError
from galexplore.io import check_regular_file
from galexplore.survey.base import Survey

__all__ = ["Survey", "open_path", "open_survey"]


def open_survey(config: Config, path: str | Path | None = None) -> Survey:
    """Open the survey a config describes (or the one at `path`, read with that config's keys)."""
    cfg = config.survey
    target = Path(path) if path is not None else config.resolve(cfg.path)
    if path is None and not cfg.path:
        raise SurveyError("the config has no survey.path; set it to the survey's file or folder")
    catalog = config.resolve(cfg.catalog) if cfg.catalog else None
    return _open(cfg, target, catalog)


def open_path(path: str | Path) -> Survey:
    """Open a survey by its path alone, guessing the source from what is there (for `inspect`)."""
    path = Path(path)
    if not path.exists():
        raise SurveyError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if path.is_dir():
        # bands=(): names from the files (FITS headers; red,green,blue for colour composites).
        if (path / "catalog.fits").exists():
            return _open(SurveyConfig(source="fits", bands=()), path, path / "catalog.fits")
        if (path / "catalog.csv").exists():
            # FITS cubes or images? The first row's `file` entry says (the readers check the rest).
            is_fits = _first_file(path / "catalog.csv").strip().lower().endswith((".fits", ".fit", ".fz"))
            source = "fits" if is_fits else "images"
            return _open(SurveyConfig(source=source, bands=()), path, path / "catalog.csv")
        raise SurveyError(
            f"{path}: a folder without catalog.csv or catalog.fits; expected an image or FITS folder "
            f"with its catalog"
        )
    if suffix in (".h5", ".hdf5", ".hdf"):
        return _open(SurveyConfig(source="hdf5", bands=()), path, None)
    if suffix in (".fits", ".fit", ".fz"):
        return _open(SurveyConfig(source="fits", bands=()), path, None)
    raise SurveyError(f"{path}: unknown survey format '{suffix}'; expected .h5/.hdf5, .fits or an image folder")


def _first_file(catalog: Path) -> str:
    """The first row's `file` entry of a CSV catalog ("" when it has none or cannot be read:
    the reader then says what is wrong). pandas, not the csv module: a field of any length."""
    check_regular_file(catalog, "a CSV catalog file", SurveyError)
    try:
        first = pd.read_csv(catalog, nrows=1, dtype=str, encoding="utf-8-sig", encoding_errors="replace",
                            keep_default_na=False)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return ""
    return str(first["file"].iloc[0]) if "file" in first and len(first) else ""


def _open(cfg: SurveyConfig, path: Path, catalog: Path | None) -> Survey:
    check_regular_file(path, "a survey file or folder", SurveyError)  # a FIFO would hang the reader
    if cfg.source in ("hdf5", "simulated"):
        from galexplore.survey.hdf5 import HDF5Survey

        return HDF5Survey(path, cfg)
    if cfg.source == "fits":
        from galexplore.survey.fits import FitsSurvey

        return FitsSurvey(path, cfg, catalog)
    if cfg.source == "images":
        from galexplore.survey.images import ImageFolderSurvey

        return ImageFolderSurvey(path, cfg, catalog)
    raise SurveyError(f"unknown survey.source {cfg.source!r}")
