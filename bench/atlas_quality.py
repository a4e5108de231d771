"""Measure an atlas of a simulated survey against its truth: anomalies, trust, neighbours.

    .venv/bin/python bench/atlas_quality.py data/atlas/demo [--json] [--anomaly-spaces]

Prints the share of injected anomalies in the top 1% by anomaly_score, the median |dz| of a
kNN photo-z (k=20, from spec-z galaxies) against the true redshift by trust decile, and how
often a galaxy's 10 most similar share its true type. --anomaly-spaces also scores the same
local outlier factor (k = 10, 20, 50) on the full representations, their PCA copy and the
survey's raw pixels (the normalised training crop, on as many principal axes as the PCA copy):
does a miss lie in the score or in the space?
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from galexplore.atlas.files import open_atlas
from galexplore.evaluate.quality import anomaly_comparison, anomaly_precision, neighbour_agreement, photoz_by_trust


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--anomaly-spaces", action="store_true",
                        help="also the anomaly precision of LOF in other spaces, raw pixels among them (reads the survey)")
    args = parser.parse_args()
    atlas = open_atlas(args.atlas)
    catalog = atlas.catalog
    space = atlas.reduced if atlas.reduced is not None else atlas.embeddings
    result = {
        "atlas": str(atlas.path),
        "n_objects": atlas.n_objects,
        "anomalies": anomaly_precision(catalog),
        "trust": photoz_by_trust(catalog, np.asarray(space)),
        "neighbours": neighbour_agreement(catalog, atlas.neighbors),
    }
    if args.anomaly_spaces:
        from galexplore.explorer.cutouts import _NoSurvey, _open_atlas_survey
        from galexplore.training.embed import load_encoder_arrays
        from galexplore.evaluate.baselines import pixel_pca

        try:
            survey = _open_atlas_survey(atlas)  # the same file, in the atlas's row order
        except _NoSurvey as exc:
            raise SystemExit(f"{atlas.path}: --anomaly-spaces needs the survey's pixels: {exc}") from None
        _, config, normalization = load_encoder_arrays(atlas.npz("encoder.npz"), atlas.json("encoder.json"),
                                                       str(atlas.path / "encoder.npz"))
        # the training crop, normalised as the encoder sees it, on as many principal axes as the PCA
        # copy has (64 where the atlas keeps none)
        dims = atlas.reduced.shape[1] if atlas.reduced is not None else 64
        pixels = pixel_pca(survey, np.arange(atlas.n_objects), normalization, config.augment.crop_size,
                           dims, config.seed)
        survey.close()
        spaces = {"representations": atlas.embeddings, "PCA copy": atlas.reduced, "raw pixels": pixels}
        result["anomaly_spaces"] = anomaly_comparison(catalog, {k: v for k, v in spaces.items() if v is not None})
    if args.json:
        print(json.dumps(result))
        return 0
    a, t, nb = result["anomalies"], result["trust"], result["neighbours"]
    print(f"{result['atlas']}: {result['n_objects']:,} galaxies")
    print(f"anomalies: {a['precision']:.1%} of the top {a['n_top']} by anomaly_score are injected rare objects "
          f"(base rate {a['base_rate']:.2%}; recall {a['recall']:.1%})")
    if "top_with_neighbour" in a:
        print(f"  {a['top_with_neighbour']:.1%} of them have a second galaxy in the stamp "
              f"(all galaxies: {a['all_with_neighbour']:.1%})")
    print(f"trust ({t['trust_column']}): kNN photo-z median |dz| per trust decile, lowest first")
    print("  " + " ".join(f"{v:.4f}" for v in t["median_abs_dz"]))
    print("  outlier fraction: " + " ".join(f"{v:.3f}" for v in t["outlier_fraction"]))
    print(f"neighbours: {nb['same_type']:.1%} of the {nb['k']} most similar share the true type "
          f"(random pairs {nb['same_type_random']:.1%}); median |dz| {nb['median_abs_dz']:.4f} "
          f"(random {nb['median_abs_dz_random']:.4f})")
    for name, found in result.get("anomaly_spaces", {}).items():
        print(f"anomalies, {name}: {found['precision']:.1%} of the top {found['n_top']} (recall {found['recall']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
