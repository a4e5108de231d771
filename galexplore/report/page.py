"""A self-contained HTML report on an atlas: maps, photo-z, whether trust works, anomalies, tables.

The report is a list of sections. A section is a function ``(atlas, folder) -> Section`` that
writes its figures (PNG) into `folder` with `figure` and returns its title, its HTML and the
figure files; one whose inputs the atlas lacks raises `SectionSkipped` with the reason, and the
report shows the title with that note. Add a section by appending to `SECTIONS` or by passing
``sections=`` to `write_report`. Every figure is also embedded as base64, so ``report.html`` alone
is enough to share.

This module assembles the page. What a section is made of (`Section`, `figure`, `table`, the
datashaded map) is `galexplore.report.blocks`; the sections on the atlas itself are
`galexplore.report.sections`, those on the label sweep and the ablation
`galexplore.report.studies`. Their names are importable from here too.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from pathlib import Path

from galexplore.atlas.files import Atlas
from galexplore.io import atomic_write_text
from galexplore.report.blocks import Section, SectionFunction, SectionSkipped, figure, table
from galexplore.report.sections import (
    anomalies_section,
    card_section,
    galaxy_map_section,
    maps_section,
    overview_section,
    photoz_section,
    probes_section,
    trust_section,
)
from galexplore.report.studies import ablation_section, label_sweep_section

REPORT = "report.html"

#: the report's sections, in order; append to add one
SECTIONS: list[SectionFunction] = [overview_section, card_section, probes_section, maps_section, galaxy_map_section,
                                   photoz_section, trust_section, label_sweep_section, ablation_section,
                                   anomalies_section]

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.data td, table.data th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
.note, .skipped { color: #666; } .verdict { font-size: 1.1em; }
"""


def write_report(atlas: Atlas, out: str | Path, sections: Sequence[SectionFunction] | None = None) -> Path:
    """Write ``report.html`` and its figure PNGs into the folder `out`; returns the HTML's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    body = []
    for make in SECTIONS if sections is None else sections:
        try:
            section = make(atlas, out)
        except SectionSkipped as skipped:
            title = (make.__doc__ or make.__name__).strip().splitlines()[0]
            body.append(f"<section><h2>{html.escape(make.__name__.removesuffix('_section').replace('_', ' ').capitalize())}"
                        f"</h2><p class='skipped'>Skipped ({html.escape(title)}): {html.escape(str(skipped))}.</p></section>")
            continue
        body.append(f"<section><h2>{html.escape(section.title)}</h2>\n{section.html}\n</section>")
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = html.escape(atlas.name)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>galexplore report: {name}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>galexplore report: {name}</h1>\n"
            f"<p class='note'>Atlas {html.escape(str(atlas.path.resolve()))}, {atlas.n_objects:,} galaxies, built by "
            f"galexplore {html.escape(str(atlas.manifest.get('code_version', '?')))}; report written {created}.</p>\n"
            + "\n".join(body) + "\n</body></html>\n")
    return atomic_write_text(out / REPORT, page)


__all__ = [
    "REPORT", "SECTIONS", "Section", "SectionFunction", "SectionSkipped", "ablation_section", "anomalies_section",
    "card_section", "figure", "galaxy_map_section", "label_sweep_section", "maps_section", "overview_section", "photoz_section", "probes_section", "table", "trust_section", "write_report",
]
