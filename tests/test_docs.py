"""The user guide in docs/ works as written.

Every command of a ```bash block in docs/*.md (one per line, `#` comments ignored) is either run
here, in a sandbox folder that holds a copy of pipelines/ and the tiny atlas, with the output it
must give (`RUN`), or mapped to a test below that runs or checks an equivalent small form of it
(`MAPPED`: GPUs, clusters, servers). `test_every_command_is_run_or_mapped` fails on a command
that is neither, and on an entry that no page uses any more. ```toml blocks whose first line
names a file (`# my.toml`) are written into the sandbox and loaded as configs; ```python blocks
run in the sandbox (those with `>>>` as doctests). The config key tables of docs/config.md and
the file and column tables of docs/atlas.md are checked against the code and a built atlas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from galexplore import cli
from galexplore.config import Config, _toml_value, load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ("index.md", "your-data.md", "config.md", "cluster.md", "serving.md", "python.md", "atlas.md")
TINY_BUILD = "galexplore build pipelines/tiny.toml --out data/atlas/tiny"

#: commands run as written, in the sandbox: (texts the output must contain, files they must leave)
RUN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    TINY_BUILD: (("atlas data/atlas/tiny: 64 galaxies", "serve it: galexplore serve data/atlas/tiny"),
                 ("data/atlas/tiny/catalog.parquet", "data/atlas/tiny/manifest.json", "data/surveys/tiny.h5")),
    "galexplore inspect data/atlas/tiny": (("(atlas, galexplore-atlas/1)", "objects      64", "umap_x"), ()),
    "galexplore inspect data/surveys/tiny.h5": (("objects      64", "5 x 32 x 32", "z_spec"), ()),
    "galexplore inspect my_sdss.h5 --config my_sdss.toml": (
        ("objects      20", "5 x 107 x 107", "z_spec              10", "e_bv_u", "e_bv_z"), ("my_sdss.h5",)),
    "galexplore inspect my_legacy.h5 --config my_legacy.toml": (("objects      12", "3 x 64 x 64  bands g,r,z",), ()),
    "galexplore inspect stacked.fits": (("objects      10", "3 x 48 x 48  bands g,r,i", "z_spec"), ()),
    "galexplore inspect cubes": (("objects      10", "3 x 48 x 48", "file                 string, 10 distinct"), ()),
    "galexplore inspect cutout_ra=150.24071_dec=2.06514.fits": (("objects      1", "150.241 .. 150.241", "2.06514"), ()),
    "galexplore inspect composites": (("objects      3", "bands red,green,blue", "J094512.33+135017.5"), ()),
    "galexplore inspect composites --config my_images.toml --json": (
        ('"bands": ["z", "r", "g"]', '"p_features": {"labels": "morphology votes", "count": 3}'), ()),
    "galexplore inspect no_positions --config my_no_positions.toml": (
        ("objects      3", "bands i,r,g", "ra                   float64  all missing, 3 missing",
         "gz1_type             string, 3 distinct"), ()),
}

#: commands checked in an equivalent small form by the named test of this module
MAPPED: dict[str, str] = {
    "make demo": "test_make_demo_builds_and_serves_the_demo_atlas",
    "galexplore serve data/atlas/tiny": "test_serve_commands_listen_where_the_docs_say",
    "galexplore serve data/atlas/demo": "test_serve_commands_listen_where_the_docs_say",
    "galexplore serve data/atlas/demo --address 0.0.0.0 --port 5006 --allow-websocket-origin myhost.example.org:5006":
        "test_serve_commands_listen_where_the_docs_say",
    "panel serve app/ --address 0.0.0.0 --port 5006 --num-procs 1 --setup app/setup.py --unused-session-lifetime "
    "120000 --allow-websocket-origin myhost.example.org:5006 --basic-auth credentials.json --cookie-secret "
    "my-long-random-secret --args --atlas data/atlas/demo": "test_panel_serve_commands_are_galexplore_serve_plus_auth",
    "panel serve app/ --address 0.0.0.0 --port 5006 --num-procs 1 --setup app/setup.py --unused-session-lifetime "
    "120000 --allow-websocket-origin myhost.example.org:5006 --oauth-provider github --oauth-key my-client-id "
    "--oauth-secret my-client-secret --oauth-redirect-uri https://myhost.example.org/app --oauth-encryption-key "
    "my-fernet-key --cookie-secret my-long-random-secret --args --atlas data/atlas/demo":
        "test_panel_serve_commands_are_galexplore_serve_plus_auth",
    "torchrun --nnodes=$NODES --nproc-per-node=$GPUS_PER_NODE --rdzv-backend=c10d --rdzv-endpoint=$HEAD_NODE:29500 "
    "-m galexplore.cli build pipelines/sdss.toml --out data/atlas/sdss": "test_torchrun_commands_parse",
    "torchrun --nnodes=$NODES --nproc-per-node=$GPUS_PER_NODE --rdzv-backend=c10d --rdzv-endpoint=$HEAD_NODE:29500 "
    "-m galexplore.cli train pipelines/sdss.toml --out data/runs/sdss": "test_torchrun_commands_parse",
    "galexplore build pipelines/sdss.toml --out data/atlas/sdss --device cpu": "test_rebuild_on_a_cpu_skips_what_is_done",
    "galexplore evaluate data/runs/sdss --json": "test_evaluate_a_run_folder",
}


# -- reading the docs --------------------------------------------------------------------------


def blocks(page: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block of a page, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", (DOCS / page).read_text(encoding="utf-8"), re.M | re.S)


def commands(body: str) -> list[str]:
    """The commands of a bash block: one per line (a trailing backslash continues it), comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = (re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines())
    return [" ".join(line.split()) for line in lines if line and not line.startswith("#")]


def all_commands() -> list[tuple[str, str]]:
    return [(page, c) for page in PAGES for lang, body in blocks(page) if lang == "bash" for c in commands(body)]


def run_cli(command: str) -> tuple[int, str]:
    """A `galexplore ...` command run in this process (the same `main` the entry point calls)."""
    argv = shlex.split(command)
    assert argv[0] == "galexplore", command
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = cli.main(argv[1:])
    return rc, out.getvalue()


def check_run(command: str) -> str:
    texts, files = RUN[command]
    rc, out = run_cli(command)
    assert rc == 0, f"{command}: exit {rc}\n{out}"
    for text in texts:
        assert text in out, f"{command}: {text!r} not in its output:\n{out}"
    for name in files:
        assert Path(name).exists(), f"{command}: {name} not written"
    return out


# -- the sandbox -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, one_torch_thread) -> Path:
    """A folder laid out like a checkout (pipelines/ copied) with the tiny atlas built in it by the
    docs' own command: 64 simulated galaxies, a few training steps."""
    folder = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "pipelines", folder / "pipelines", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        check_run(TINY_BUILD)
    return folder


def test_every_command_is_run_or_mapped():
    found = all_commands()
    assert len(found) >= 15
    loose = [f"{page}: {c}" for page, c in found if c not in RUN and c not in MAPPED]
    assert not loose, "commands in docs/ that no test runs or maps (add them to RUN or MAPPED):\n" + "\n".join(loose)
    used = {c for _, c in found}
    stale = sorted((set(RUN) | set(MAPPED)) - used)
    assert not stale, f"RUN/MAPPED entries that no page has any more: {stale}"
    tests = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    assert set(MAPPED.values()) <= tests


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_as_written(page, sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    globs: dict = {}
    ran = 0
    for lang, body in blocks(page):
        if lang == "toml":
            first = body.splitlines()[0]
            assert first.startswith("# ") and first.endswith(".toml"), f"{page}: a toml block must name its file"
            name = first[2:].strip()
            Path(name).write_text(body, encoding="utf-8")
            assert load_config(name).name == Path(name).stem
        elif lang == "python" and ">>>" in body:
            test = doctest.DocTestParser().get_doctest(body, globs, f"{page}", page, 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            out = io.StringIO()
            runner.run(test, out=out.write, clear_globs=False)
            assert runner.failures == 0, out.getvalue()
            globs.update(test.globs)  # the next block goes on from this one
            ran += runner.tries
        elif lang == "python":
            exec(compile(body, page, "exec"), globs)
            ran += 1
        elif lang == "bash":
            for command in commands(body):
                if command in RUN:
                    check_run(command)
                    ran += 1
    assert ran >= {"index.md": 3, "your-data.md": 11, "python.md": 25}.get(page, 0)


# -- commands mapped to a small equivalent -----------------------------------------------------


def test_make_demo_builds_and_serves_the_demo_atlas():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert ".venv/bin/galexplore build pipelines/demo.toml --out data/atlas/demo" in out
    assert ".venv/bin/galexplore serve data/atlas/demo" in out


def _options(tokens: list[str]) -> dict[str, list[str]]:
    """--flag value pairs (a flag without a value maps to []), in order of appearance."""
    found: dict[str, list[str]] = {}
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            value = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--") else None
            found.setdefault(token, []).extend([value] if value is not None else [])
    return found


def test_serve_commands_listen_where_the_docs_say(sandbox):
    serves = [c for _, c in all_commands() if c.startswith("galexplore serve")]
    assert len(serves) >= 3
    atlas = sandbox / "data" / "atlas" / "tiny"
    for command in serves:
        args = cli._parser().parse_args(shlex.split(command)[1:])
        line = cli.serve_command(atlas, args.port, args.address, args.allow_websocket_origin, args.show)
        options = _options(line[line.index("serve"):line.index("--args")])
        assert line[-3:] == ["--args", "--atlas", str(atlas)]
        assert options["--port"] == ["5006"]
        if "--address" in command:
            assert options["--address"] == ["0.0.0.0"]
            assert options["--allow-websocket-origin"] == ["myhost.example.org:5006"]
        else:  # the default: this machine only
            assert options["--address"] == ["127.0.0.1"]
            assert options["--allow-websocket-origin"] == ["localhost:5006", "127.0.0.1:5006"]


AUTH_FLAGS = ("--basic-auth", "--cookie-secret", "--oauth-provider", "--oauth-key", "--oauth-secret",
              "--oauth-redirect-uri", "--oauth-encryption-key")


def test_panel_serve_commands_are_galexplore_serve_plus_auth(sandbox):
    panels = [c for _, c in all_commands() if c.startswith("panel serve")]
    assert len(panels) == 2
    line = cli.serve_command(sandbox / "data" / "atlas" / "tiny", 5006, "0.0.0.0", ["myhost.example.org:5006"])
    expected = _options(line[line.index("serve"):line.index("--args")])
    expected["--setup"] = ["app/setup.py"]
    help_text = subprocess.run([sys.executable, "-m", "panel", "serve", "--help"], capture_output=True, text=True,
                               check=True).stdout
    for command in panels:
        tokens = shlex.split(command)
        assert tokens[2] == "app/" and tokens[-3:] == ["--args", "--atlas", "data/atlas/demo"]
        options = _options(tokens[:-3])
        assert {k: v for k, v in options.items() if k not in AUTH_FLAGS} == expected
        assert "--cookie-secret" in options and ("--basic-auth" in options or "--oauth-provider" in options)
        for flag in options:
            assert re.search(rf"^\s+{re.escape(flag)}\b", help_text, re.M), f"`panel serve` has no {flag}"


def test_torchrun_commands_parse():
    from torch.distributed.run import get_args_parser

    runs = [c for _, c in all_commands() if c.startswith("torchrun")]
    assert len(runs) == 2
    env = {"NODES": "4", "GPUS_PER_NODE": "8", "HEAD_NODE": "node001"}
    for command in runs:
        argv = shlex.split(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], command))[1:]
        launch = get_args_parser().parse_args(argv)
        assert (launch.nnodes, launch.nproc_per_node, launch.rdzv_endpoint) == ("4", "8", "node001:29500")
        assert launch.module and launch.training_script == "galexplore.cli"
        args = cli._parser().parse_args(launch.training_script_args)
        assert args.verb in ("build", "train")
        assert load_config(ROOT / args.config).model.arch == "resnet50"


@pytest.mark.slow
def test_torchrun_trains_with_two_processes_on_the_cpu(sandbox):
    """The docs' torchrun train, on the tiny preset: 2 processes on the CPU (gloo) for 2 steps."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "galexplore.cli", "train", "pipelines/tiny.toml", "--out", "data/runs/tiny2",
               "--max-steps", "2", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=sandbox, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 2/" in done.stdout
    assert any((sandbox / "data" / "runs" / "tiny2" / "checkpoints").iterdir())


def test_rebuild_on_a_cpu_skips_what_is_done(sandbox, monkeypatch):
    assert load_config(ROOT / "pipelines" / "sdss.toml").survey.rename == {"specz_redshift": "z_spec"}
    monkeypatch.chdir(sandbox)
    rc, out = run_cli(TINY_BUILD + " --device cpu")
    assert rc == 0
    for stage in ("train", "embed", "neighbors", "project", "scores", "catalog"):
        assert re.search(rf"^\s+{stage}\s+skipped", out, re.M), out


def test_evaluate_a_run_folder(sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    rc, out = run_cli("galexplore evaluate data/atlas/tiny.run --json")
    assert rc == 0
    result = json.loads(out)
    assert result["n_labelled"] == 13 and {"trained", "untrained", "pixel_pca"} <= set(result)


# -- tables checked against the code and a built atlas -----------------------------------------


def _type_cell(hint: typing.Any, meta: typing.Mapping) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        text = " \\| ".join(f'"{a}"' for a in typing.get_args(hint))
    elif origin is tuple:
        text = f"list of {typing.get_args(hint)[0].__name__}"
    elif origin is dict:
        text = "table of strings"
    else:
        text = hint.__name__
    bounds = [f"{op} {meta[key]}" for key, op in (("ge", ">="), ("gt", ">"), ("le", "<=")) if meta.get(key) is not None]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _table_rows(text: str) -> dict[str, list[str]]:
    """First cell (without backticks) -> the row's cells, for every table row of `text`."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0].strip("`")] = cells
    return rows


def test_config_tables_list_every_key_with_its_type_and_default():
    text = (DOCS / "config.md").read_text(encoding="utf-8")
    sections = re.split(r"^### \[(\w+)\]$", text, flags=re.M)
    tables = {"": _table_rows(sections[0])} | {sections[i]: _table_rows(sections[i + 1]) for i in range(1, len(sections), 2)}
    defaults, missing, wrong = Config(), [], []
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):
            continue
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            section, owner, fields = f.name, type(value), dataclasses.fields(value)
        else:
            section, owner, fields, value = "", Config, [f], defaults
        hints = typing.get_type_hints(owner)
        for g in fields:
            key = g.name if section else f.name
            row = tables.get(section, {}).get(key)
            if row is None:
                missing.append(f"[{section}] {key}" if section else key)
                continue
            expected = [_type_cell(hints[g.name], g.metadata), f"`{_toml_value(getattr(value, g.name))}`"]
            if row[1:3] != expected or not row[3]:
                wrong.append(f"{section}.{key}: {row[1:3]} should be {expected}, with a meaning")
    assert not missing, f"config keys missing from docs/config.md: {missing}"
    assert not wrong, "\n".join(wrong)
    documented = {s for s in tables if s} - {f.name for f in dataclasses.fields(Config)}
    assert not documented, f"docs/config.md documents tables the config does not have: {documented}"


def test_atlas_page_describes_every_file_and_column(sandbox):
    import pandas as pd

    rows = _table_rows((DOCS / "atlas.md").read_text(encoding="utf-8"))
    names = {part.strip().strip("`") for key in rows for part in key.split("`, `")}
    atlas = sandbox / "data" / "atlas" / "tiny"
    files = {p.name + ("/" if p.is_dir() else "") for p in atlas.iterdir()}
    assert {"manifest.json", "catalog.parquet", "embeddings.npy", "neighbors.npy"} <= files
    assert not files - names, f"files of a built atlas missing from docs/atlas.md: {sorted(files - names)}"
    columns = set(pd.read_parquet(atlas / "catalog.parquet").columns)
    assert len(columns) == 34
    assert not columns - names, f"catalog columns missing from docs/atlas.md: {sorted(columns - names)}"
    # what the build adds on larger atlases (probes need 20 labels): every name the stages record
    manifest = json.loads((atlas / "manifest.json").read_text())
    assert not set(manifest["files"]) - names
    for built in sorted((ROOT / "data" / "atlas").glob("*/manifest.json")):
        stages = json.loads(built.read_text())["stages"]
        added = set(stages["scores"]["columns"]) | set(stages.get("probes", {}).get("columns", []))
        loose = {c for c in added - names if not re.fullmatch(r"trust_\w+|\w+_pred|\w+_prob", c)}
        assert not loose, f"{built.parent.name}: columns missing from docs/atlas.md: {sorted(loose)}"
    assert {"trust_<kind>", "<column>_pred", "<class column>_pred", "<class column>_prob", "z_phot",
            "z_phot_width"} <= names


def test_where_panel_serve_is_shown_the_docs_say_it_listens_on_every_interface():
    """`galexplore serve` listens on 127.0.0.1; a bare `panel serve app/` on every interface."""
    for page in (ROOT / "README.md", ROOT / "docs" / "serving.md"):
        text = " ".join(page.read_text(encoding="utf-8").split())
        assert "panel serve app/" in text
        assert re.search(r"`panel serve app/`[^.]* listens on every network interface unless it is given "
                         r"`--address 127\.0\.0\.1`", text), page
        assert "DNS rebinding" in text, page
