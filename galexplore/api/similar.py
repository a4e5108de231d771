"""The similarity queries of the notebook API: the galaxies most similar to one of the atlas's
own (the precomputed neighbour graph) or to a new cutout, embedded with the atlas's own encoder,
normalisation, crop and PCA and then searched exactly. The examples run on an atlas that
tests/test_api.py builds.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from galexplore.api.catalog import CatalogAtlas
from galexplore.atlas.files import EMBEDDING_CENTER, EMBEDDINGS, REDUCED, AtlasError
from galexplore.errors import GalexploreError
from galexplore.explorer import queries as explore

ENCODER = ("encoder.npz", "encoder.json")
PCA_FILE = "pca.npz"


class SimilarAtlas(CatalogAtlas):
    """An opened atlas that also answers which galaxies look alike, and reads their cutouts."""

    # -- similar galaxies --------------------------------------------------------------------

    def similar(self, object_id: Any, k: int = 10) -> pd.DataFrame:
        """The `k` galaxies most similar to galaxy `object_id`, best first, with their cosine
        ``similarity``: the atlas's precomputed neighbours (itself excluded).

        >>> first = atlas.catalog["object_id"].iloc[0]
        >>> best = atlas.similar(first, k=2)
        >>> len(best), bool(best["similarity"].is_monotonic_decreasing)
        (2, True)
        """
        kept = self.neighbors.shape[1]
        if k > kept:
            raise AtlasError(f"atlas {self.path}: k = {k}, but the atlas keeps {kept} neighbours per galaxy; "
                             f"ask for at most {kept}, or rebuild with a larger neighbors.k")
        rows, sims = explore.similar(self.neighbors, self.similarities, self.row(object_id), k)
        return self._frame(rows, "similarity", sims)

    def similar_to_cutout(self, image: np.ndarray, k: int = 10) -> pd.DataFrame:
        """The `k` galaxies most similar to a new cutout, best first, with their ``similarity``.

        `image`: (C, H, W) in the units of the atlas's survey, with its bands in its order. It
        goes the way every galaxy of the atlas went: the encoder's normalisation, the embed
        stage's centre crop, the backbone, the PCA the neighbours were searched in; then an exact
        search. A galaxy's own cutout finds that galaxy first, with similarity 1 (to float32).

        >>> first = atlas.catalog["object_id"].iloc[0]
        >>> hits = atlas.similar_to_cutout(atlas.cutout(first), k=3)
        >>> int(hits.index[0]), round(float(hits["similarity"].iloc[0]), 4)  # itself first
        (0, 1.0)
        """
        from galexplore.maps.neighbors import search_vectors

        if not 1 <= k <= len(self):
            raise GalexploreError(f"k = {k}: expected 1 <= k <= {len(self):,}, the atlas's galaxies")
        vector = self.embed(image)                                  # (1, d)
        space = self._search_space
        rows, sims = search_vectors(space, vector, k, index=self._search_index)
        return self._frame(rows[0], "similarity", sims[0])

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The search-space vector (1, d) float32, unit length, of a cutout (C, H, W): the one
        `similar_to_cutout` searches with (see there)."""
        from galexplore.training.embed import center_rows, represent
        from galexplore.survey.memory import ArraySurvey

        backbone, normalization, crop = self._encoder
        image = self._check_cutout(image, normalization.bands, crop)
        survey = ArraySurvey(image[None], bands=normalization.bands, source="the cutout")
        vector = represent(backbone, survey, np.arange(1), normalization, crop, next(backbone.parameters()).device)
        if self.has(EMBEDDING_CENTER):  # as the embed stage did (embed.center)
            vector = center_rows(vector, self.array(EMBEDDING_CENTER))
        if self._space_name == REDUCED:
            vector = self._pca.transform(vector)
        return vector

    def cutout(self, object_id: Any) -> np.ndarray:
        """Galaxy `object_id`'s cutout (C, H, W) float32 from the survey the atlas was built
        from; `AtlasError` saying why when that survey cannot be read."""
        return self._survey[self.row(object_id)]

    def close(self) -> None:
        """Close the survey `cutout` opened, if any (the arrays are memory maps: nothing to close)."""
        survey = self.__dict__.pop("_survey", None)
        if survey is not None:
            survey.close()

    # -- what is built on first use ----------------------------------------------------------

    @functools.cached_property
    def _space_name(self) -> str:
        """The vectors the neighbours were searched in, as the neighbours stage recorded."""
        recorded = (self.stages.get("neighbors") or {}).get("space")
        return recorded or (REDUCED if self.has(REDUCED) else EMBEDDINGS)

    @functools.cached_property
    def _search_space(self) -> np.ndarray:
        return self.array(self._space_name)

    @functools.cached_property
    def _search_index(self) -> Any:
        from galexplore.maps.neighbors import build_index

        return build_index(self._search_space, method="exact")

    @functools.cached_property
    def _pca(self) -> Any:
        from galexplore.maps.projection import PCA

        if not self.has(PCA_FILE):
            raise AtlasError(f"atlas {self.path}: its neighbours were searched in {REDUCED} but it has no {PCA_FILE} "
                             f"to reduce a new cutout the same way; rebuild it with `galexplore build`")
        return PCA.from_arrays(self.npz(PCA_FILE))

    @functools.cached_property
    def _encoder(self) -> tuple[Any, Any, int]:
        """(backbone on the CPU in eval mode, normalisation, crop size) as the embed stage used them."""
        from galexplore.training.embed import load_encoder_arrays

        missing = [name for name in ENCODER if not self.has(name)]
        if missing:
            raise AtlasError(f"atlas {self.path}: no {missing[0]}: an atlas built from given embeddings has no "
                             f"encoder to embed a new cutout with; build it from a survey to search by image")
        backbone, config, normalization = load_encoder_arrays(
            self.npz(ENCODER[0]), self.json(ENCODER[1]), str(self.path / ENCODER[0]))
        crop = (self.stages.get("embed") or {}).get("crop_size") or config.augment.crop_size
        return backbone, normalization, int(crop)

    @functools.cached_property
    def _survey(self) -> Any:
        from galexplore.explorer.cutouts import _NoSurvey, _open_atlas_survey

        try:
            return _open_atlas_survey(self)
        except _NoSurvey as exc:
            raise AtlasError(f"atlas {self.path}: no cutouts: {exc}") from None

    def _check_cutout(self, image: Any, bands: tuple[str, ...], crop: int) -> np.ndarray:
        image = np.asarray(image)
        survey = (self.manifest.get("provenance") or {}).get("survey") or {}
        shape = survey.get("shape")
        expected = f"{len(bands)} x {shape[1]} x {shape[2]}" if shape else f"{len(bands)} x H x W (H, W >= {crop})"
        what = f"the atlas's survey has cutouts of {expected} ({', '.join(bands)})"
        if image.dtype.kind not in "fiu":
            raise GalexploreError(f"the cutout has dtype {image.dtype}; expected fluxes (numbers); {what}")
        if image.ndim != 3 or image.shape[0] != len(bands):
            raise GalexploreError(f"the cutout has shape {image.shape}, expected (C, H, W) with C = {len(bands)} "
                                  f"bands; {what}")
        if image.shape[1] != image.shape[2] or image.shape[1] < crop:
            raise GalexploreError(f"the cutout is {image.shape[1]} x {image.shape[2]} pixels; the encoder sees "
                                  f"the central {crop} x {crop} of a square cutout; {what}")
        if not np.isfinite(image).all():
            bad = int((~np.isfinite(image)).sum())
            raise GalexploreError(f"the cutout has {bad} NaN or infinite pixels; expected none")
        return image.astype(np.float32)
