"""Image-folder surveys: PNG/JPEG colour composites listed in a CSV catalog.

The layout of Galaxy Zoo and Zoobot sets (e.g. the DECaLS ring set in ``../shared/data``)::

    folder/catalog.csv      one row per object: a `file` column (survey.file_column) naming the
                            image relative to the folder, RA/Dec columns or IAU names
                            (J000411.19+020924.0) (or neither, with survey.positions = "none"),
                            and any labels
    folder/images/*.png     8-bit composites, already stretched (not fluxes), all the same size

Cutouts are float32 (C, H, W) scaled to [0, 1], in steps of ``quantum = 1/255`` (the noise
estimate of `galexplore.survey.normalize.sky_statistics` takes the steps into account): C = 3 for colour images, channels in file order
(R, G, B), or C = 1 for greyscale. The channels are named by survey.bands; when that is empty
they are named ``red, green, blue`` (or ``grey``), because a composite's channels are not fluxes
in a band. For DESI Legacy Surveys composites the usual mapping is R = z, G = r, B = g: set
``bands = ["z", "r", "g"]`` to say so. Images are read one by one on demand; at open only the
catalog and the first image's header are read.

``survey.center_crop`` and ``survey.resize`` resample every image on read: the central
center_crop x center_crop stored pixels (0: all of them), resized (Lanczos) to resize x resize
(0: kept). The survey's shape and pixel scale are those of the resampled images
(pixel_scale x center_crop / resize), so a 212 px Galaxy Zoo composite can be seen whole at a
working size of 64 px instead of as a 64 px crop of its core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError
from galexplore.io import check_regular_file
from galexplore.survey.base import MAX_CUTOUT_SIDE, Survey, check_catalog
from galexplore.survey.catalogs import catalog_positions, file_names, read_csv_catalog

#: default channel names of a colour composite, in file order, and of a greyscale image
RGB_BANDS = ("red", "green", "blue")
GREY_BANDS = ("grey",)
#: PIL modes of 8-bit images and how many channels each gives (alpha dropped, palette expanded)
_CHANNELS = {"1": 1, "L": 1, "LA": 1, "P": 3, "PA": 3, "RGB": 3, "RGBA": 3, "RGBX": 3, "CMYK": 3, "YCbCr": 3}


class ImageFolderSurvey(Survey):
    """A folder of 8-bit PNG/JPEG composites with a CSV catalog naming each image."""

    def __init__(self, path: str | Path, config: SurveyConfig | None = None, catalog: str | Path | None = None) -> None:
        cfg = config or SurveyConfig(source="images", bands=())
        self.path = Path(path)
        self.source = str(self.path)
        if not self.path.is_dir():
            raise SurveyError(f"{self.path}: not a folder; expected a folder of images with a CSV catalog")
        self.catalog_path = Path(catalog) if catalog is not None else self.path / "catalog.csv"
        csv = str(self.catalog_path)
        text_columns = (cfg.file_column, cfg.name_column)
        table = read_csv_catalog(self.catalog_path, text_columns=text_columns)
        self._files = file_names(table, cfg.file_column, csv)
        if not len(table):
            raise SurveyError(f"{csv}: the catalog has no rows; expected one row per image")
        self.catalog = check_catalog(catalog_positions(table, cfg, csv), len(table), csv, cfg.positions)
        self.nonfinite = cfg.nonfinite  # 8-bit pixels are always finite
        self.nonfinite_masked = 0
        self.quantum = 1.0 / 255.0  # 8-bit pixels scaled to [0, 1]
        self.composite = True  # rendered as they are, never re-stretched (galexplore.explorer.cutouts)

        # The first image sets the expected size and channel count (unless the config does).
        with self._open_image(0) as image:
            width, height = image.size
            mode = image.mode
        channels = _CHANNELS[mode]
        expected = cfg.image_size or width
        if (width, height) != (expected, expected):
            what = f"survey.image_size = {cfg.image_size}" if cfg.image_size else "square cutouts"
            raise SurveyError(
                f"{self._file(0)} (catalog row 0): image is {width}x{height} pixels; expected "
                f"{expected}x{expected} ({what})"
            )
        self._crop = cfg.center_crop or width
        if self._crop > width:
            raise SurveyError(
                f"{self._file(0)}: survey.center_crop = {cfg.center_crop} exceeds the {width}x{height} images"
            )
        side = cfg.resize or self._crop
        self.pixel_scale = cfg.pixel_scale * self._crop / side  # arcsec per working pixel
        self._stored = (width, height)
        self.shape = (channels, side, side)
        default = RGB_BANDS if channels == 3 else GREY_BANDS
        self.bands = tuple(cfg.bands) or default
        if len(self.bands) != channels:
            raise SurveyError(
                f"{self._file(0)}: {mode} images have {channels} channels; the config "
                f"(survey.bands) lists {len(self.bands)}: {','.join(self.bands)}"
            )

    def _file(self, row: int) -> Path:
        return self.path / self._files[row]

    def _open_image(self, row: int) -> Image.Image:
        """Open one image lazily (header only), refusing unreadable and absurdly large ones."""
        file = self._file(row)
        where = f"{file} (catalog row {row}, {self.catalog_path.name})"
        check_regular_file(file, "a PNG/JPEG image", SurveyError, where)
        try:
            image = Image.open(file)
        except FileNotFoundError:
            raise SurveyError(f"{where}: image file not found") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise SurveyError(f"{where}: image header claims absurdly large dimensions ({exc})") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise SurveyError(f"{where}: not a readable PNG/JPEG image ({exc})") from None
        width, height = image.size
        if width > MAX_CUTOUT_SIDE or height > MAX_CUTOUT_SIDE:  # a decompression bomb: not decoded
            image.close()
            raise SurveyError(
                f"{where}: image header claims {width}x{height} pixels, absurdly large for a cutout "
                f"(at most {MAX_CUTOUT_SIDE} per side); the file is corrupt or not a cutout"
            )
        if image.mode not in _CHANNELS:
            image.close()
            raise SurveyError(
                f"{where}: image mode {image.mode}; expected an 8-bit greyscale or colour image "
                f"(L, RGB, RGBA or palette)"
            )
        return image

    def _load(self, row: int) -> np.ndarray:
        """One image as float32 (C, H, W) in [0, 1], checked against the survey's shape."""
        c, h, w = self.shape
        with self._open_image(row) as image:
            where = f"{self._file(row)} (catalog row {row}, {self.catalog_path.name})"
            if image.size != self._stored or _CHANNELS[image.mode] != c:
                raise SurveyError(
                    f"{where}: image is {image.size[0]}x{image.size[1]} {image.mode} "
                    f"({_CHANNELS[image.mode]} channels); expected {self._stored[0]}x{self._stored[1]} "
                    f"with {c} channels like the rest of the survey"
                )
            try:
                image = image.convert("RGB" if c == 3 else "L")
                if self._crop != self._stored[0] or (w, h) != (self._crop, self._crop):
                    left = (self._stored[0] - self._crop) // 2
                    top = (self._stored[1] - self._crop) // 2
                    box = (left, top, left + self._crop, top + self._crop)
                    image = image.resize((w, h), Image.Resampling.LANCZOS, box=box)
                pixels = np.asarray(image, dtype=np.uint8)
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise SurveyError(f"{where}: image data is corrupt or truncated ({exc})") from None
        pixels = pixels.reshape(h, w, c).transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        return pixels.astype(np.float32) / np.float32(255)

    def _read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape), dtype=np.float32)  # (B, C, H, W)
        for k, row in enumerate(indices):
            out[k] = self._load(int(row))
        return out
