"""The atlas from Python: what the explorer answers, as calls for a notebook or a script.

`open_atlas` validates an atlas folder (as `galexplore.atlas.files.open_atlas` does) and returns an
`Atlas` whose arrays are memory-mapped and whose catalog is read once. On it: a galaxy by
``object_id``, by sky position or within a radius; the galaxies most similar to one of its own
(the precomputed neighbour graph) or to a new cutout (embedded with the atlas's own encoder,
normalisation, crop and PCA, then searched exactly); the galaxies inside a polygon drawn on the
map; any of these as an astropy Table; and the explorer app itself, inline in Jupyter.

Every answer about galaxies is a pandas DataFrame of catalog rows indexed by atlas row, with
``object_id`` first (and ``similarity`` or ``separation_arcsec`` second where there is one).
A mistake (an unknown id, a cutout of the wrong shape, a polygon of two vertices) raises a
`GalexploreError` (an `AtlasError` where the atlas cannot answer) that says what and why.

>>> import galexplore as gx
>>> atlas = gx.open_atlas(atlas_path)  # e.g. "data/atlas/demo"
>>> len(atlas) == len(atlas.catalog)
True
>>> first = atlas.catalog["object_id"].iloc[0]
>>> atlas.galaxy(first).name  # the atlas row
0
>>> list(atlas.similar(first, k=3).columns[:2])
['object_id', 'similarity']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from galexplore.api.catalog import DESCRIPTIONS, UNITS, CatalogAtlas, sky_position
from galexplore.api.similar import ENCODER, PCA_FILE, SimilarAtlas
from galexplore.atlas import reader
from galexplore.atlas.files import CATALOG, EMBEDDINGS, NEIGHBORS, SIMILARITIES

__all__ = ["Atlas", "open_atlas"]


def open_atlas(path: str | Path) -> Atlas:
    """The atlas at `path`, validated (manifest, every file's size, fingerprint and shape) and
    ready to query; `AtlasError` naming the problem otherwise. Nothing large is read yet."""
    opened = reader.open_atlas(path, require=(CATALOG, EMBEDDINGS, NEIGHBORS, SIMILARITIES))
    return Atlas(opened.path, opened.manifest)


class Atlas(SimilarAtlas):
    """An opened atlas with the explorer's questions as methods (see the module docstring): the
    catalog's (`galexplore.api.catalog`), the similarity searches (`galexplore.api.similar`) and
    the explorer app itself.

    Everything of `galexplore.atlas.reader.Atlas` (``catalog``, ``embeddings``, ``neighbors``,
    ``manifest``, ...) is here too. The map and sky indexes, the encoder and the search index
    are built on first use and kept.
    """

    def __len__(self) -> int:
        return self.n_objects

    def explorer(self, url: str | None = None, **params: Any) -> Any:
        """The explorer on this atlas, for a notebook: in Jupyter, run ``pn.extension("tabulator")``
        once, then ``atlas.explorer()`` shows the page inline (or ``.servable()`` / ``pn.serve``
        it). Its state reads and sets from Python: ``.selection`` (a DataFrame of the selected
        rows, live as the lasso moves), ``.clicked``, ``.select(ids)``, ``.click(id)``,
        ``.colour``. `url`, a bookmarked page's address, opens the view it keeps (colouring,
        zoom, clicked galaxy, ...), checked as the app checks it; `params` set the view as well
        (``colour="z_spec"``, ``k=8``, ``query=row``). Needs Panel (``pip install galexplore[app]``).

        >>> app = atlas.explorer(colour="trust")
        >>> app.colour, len(app.select(atlas.catalog["object_id"].iloc[:3]))
        ('trust', 3)
        >>> int(app.click(atlas.catalog["object_id"].iloc[4])["object_id"]) == int(atlas.catalog["object_id"].iloc[4])
        True
        >>> atlas.explorer("http://localhost:5006/app?galaxy=2&k=5").clicked.name
        2
        """
        import urllib.parse

        from galexplore.explorer.page import Explorer
        from galexplore.explorer.store import load
        from galexplore.explorer.urlstate import read_url

        data = load(self.path)
        if url is None:
            return Explorer(data, **params)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        bookmarked = read_url(query, data.colourings, data.n)
        explorer = Explorer(data, **{**bookmarked.values, **params})
        explorer.state.note(bookmarked.notes)
        return explorer
