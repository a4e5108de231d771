"""The suite's outputs: `<date>-<host>.json` (everything), `<date>-<host>.md` (the table),
`latest.md` (a copy of the newest table, at a fixed name for the README to link) and, after a
full run, the README's short table (between its `bench:begin` and `bench:end` markers)."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.measure import Row, format_value, machine_line

SCHEMA = "galexplore-bench/1"
COLUMNS = ("benchmark", "ours", "anchor", "ratio", "goal", "met", "N", "D", "machine")


def result_stem(date: str, host: str) -> str:
    """The file name of one run, without suffix: its date and its host, made safe for a path.

    >>> result_stem("2026-01-31", "node 7/a")
    '2026-01-31-node-7-a'
    """
    return f"{date}-{re.sub(r'[^A-Za-z0-9.-]+', '-', host).strip('-') or 'host'}"


def document(rows: Sequence[Row], run: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of a run: `run` (date, machine, sizes, groups, ...) and every row, each
    with the machine in one line."""
    line = machine_line(run["machine"])
    return {"schema": SCHEMA, **run, "rows": [_finite({**row.to_dict(), "machine": line}) for row in rows]}


def markdown(doc: Mapping[str, Any]) -> str:
    """The results table of a run's document, with a heading, the goals met and each group's time."""
    machine = machine_line(doc["machine"])
    mode = " (--quick: shrunk sizes, figures not comparable)" if doc.get("quick") else ""
    lines = [
        f"# galexplore benchmarks, {doc['date']} on {doc['machine']['host']}{mode}",
        "",
        f"Machine: {machine}; Python {doc['machine']['python']}, numpy {doc['machine']['numpy']}, "
        f"faiss {doc['machine']['faiss']}. Ratio = ours / anchor (times and rates alike); "
        f"`python -m bench.suite` wrote this ({doc['seconds']:.0f} s in all).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(" --- " for _ in COLUMNS) + "|",
    ]
    for row in doc["rows"]:
        cells = [
            row["name"],
            f"{format_value(row['ours'], row['unit'])} ({row['ours_label']})",
            f"{format_value(row['anchor'], row['unit'])} ({row['anchor_label']})" if row["anchor_label"] else "—",
            f"{row['ratio']:.3g}x" if row["ratio"] is not None else "—",
            row["goal"] or "—",
            {True: "yes", False: "**no**", None: "—"}[row["met"]],
            f"{row['n']:,}" if row["n"] is not None else "—",
            str(row["d"]) if row["d"] is not None else "—",
            row["machine"],
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    with_goal = [row for row in doc["rows"] if row["goal"]]
    lines += ["", f"Goals met: {sum(row['met'] is True for row in with_goal)} of {len(with_goal)}.", ""]
    lines += ["| group | seconds | budget (s) | notes |", "| --- | --- | --- | --- |"]
    for name, group in doc["groups"].items():
        note = f"**failed**: {group['error'].splitlines()[0]}" if group.get("error") else group.get("note", "")
        lines.append(f"| {name} | {group['seconds']:.0f} | {group['budget_s']} | {note} |")
    notes = [(row["name"], row["notes"]) for row in doc["rows"] if row["notes"]]
    if notes:
        lines += ["", "Notes per row:", ""]
        lines += [f"- {name}: " + "; ".join(f"{k} {_note(v)}" for k, v in values.items()) for name, values in notes]
    return "\n".join(lines) + "\n"


def write(doc: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Write the JSON and the markdown of a run into `out`, and copy the markdown to latest.md."""
    out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(doc["date"], doc["machine"]["host"])
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(markdown(doc), encoding="utf-8")
    shutil.copyfile(md_path, out / "latest.md")
    return json_path, md_path


README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def readme_table(doc: Mapping[str, Any]) -> str:
    """The short table the README shows: each row's figures and ratio, its goal and whether it was met."""
    lines = [f"Measured by `make bench` on {doc['date']}: {machine_line(doc['machine'])}; "
             f"{doc['seconds'] / 60:.0f} minutes in all. Ratio = ours / anchor. Full table and notes: "
             f"[bench/results/latest.md](bench/results/latest.md).", "",
             "| benchmark | N | ours | anchor | ratio | goal | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in doc["rows"]:
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in (
            row["name"], f"{row['n']:,}" if row["n"] is not None else "—",
            format_value(row["ours"], row["unit"]),
            f"{format_value(row['anchor'], row['unit'])} ({row['anchor_label']})" if row["anchor_label"] else "—",
            f"{row['ratio']:.3g}x" if row["ratio"] is not None else "—", row["goal"] or "—",
            {True: "yes", False: "**no**", None: "—"}[row["met"]])) + " |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, doc: Mapping[str, Any]) -> bool:
    """Put `readme_table(doc)` between the README's markers; False (nothing written) without them.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "README.md"
    >>> _ = path.write_text(f"intro\\n{README_BEGIN}\\nold\\n{README_END}\\nrest\\n")
    >>> update_readme(path, {"date": "d", "seconds": 60.0, "rows": [],
    ...                       "machine": {"cpu": "c", "cores": 2, "torch": "t", "gpu": None}})
    True
    >>> text = path.read_text()
    >>> "old" in text, text.startswith("intro"), text.endswith("rest\\n")
    (False, True, True)
    """
    text = readme.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        return False
    new = text[: begin + len(README_BEGIN)] + "\n" + readme_table(doc) + text[end:]
    temporary = readme.with_name(readme.name + ".tmp")
    temporary.write_text(new, encoding="utf-8")
    temporary.replace(readme)
    return True


def _finite(value: Any) -> Any:
    """NaN and infinity as null: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _note(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
