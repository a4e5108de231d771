"""A corpus of bad inputs, each given to the real command line in a subprocess (or, where there is
no command, to the library function the app calls). Every one is refused with one line that names
the file and what was expected versus found, exit status 2 and no traceback, and whatever was
already written is left byte for byte as it was (or nothing is left behind)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from PIL import Image

from galexplore.atlas.files import CATALOG, EMBEDDINGS, MANIFEST, NEIGHBORS, SIMILARITIES, AtlasWriter, file_fingerprint
from galexplore.errors import GalexploreError

from .synthetic import PIPELINES, png_header_only

N, D = 40, 8  # the atlas and its given embeddings
NAME = "bad-inputs"
TINY = PIPELINES / "tiny.toml"  # five ugriz bands, a simulated (HDF5) survey


# -- helpers ---------------------------------------------------------------------------------------


def run_cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "galexplore.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def refused(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 2, no traceback, one error line on stderr holding every `expected` text (after at most
    a stage's progress bar); returns the line."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    *before, line = result.stderr.strip().splitlines()
    assert all("%|" in bar for bar in before), result.stderr  # tqdm's, from `build`
    assert line.startswith("galexplore ") and ": error: " in line, line
    for text in expected:
        assert text in line, (text, line)
    return line


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cube(n: int = 4, c: int = 5, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c, size, size)).astype(np.float32)


def write_h5(path: Path, images: np.ndarray | None = None, **columns: np.ndarray) -> Path:
    images = cube() if images is None else images
    n = len(images)
    columns = {"object_id": np.arange(10, 10 + n), "ra": np.linspace(1.0, 2.0, n),
               "dec": np.linspace(-1.0, 1.0, n), **columns}
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        for name, values in columns.items():
            if values is not None:
                f.create_dataset(name, data=values)
    return path


def write_config(path: Path, text: str = "", survey: Path | None = None) -> Path:
    """A small, valid config (its name the atlas's) plus `text`; `survey` an HDF5 survey to read."""
    head = f'name = "{NAME}"\n'
    if survey is not None:
        head += f'[survey]\nsource = "hdf5"\npath = "{survey}"\n'
    path.write_text(head + text, encoding="utf-8")
    return path


def write_folder(folder: Path, n: int = 4, size: int = 8) -> Path:
    """An image-folder survey: n seeded PNGs and catalog.csv with file, ra, dec."""
    folder.mkdir(exist_ok=True)
    rgb = np.random.default_rng(1).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(rgb[i]).save(folder / f"g{i}.png")
    pd.DataFrame({"file": [f"g{i}.png" for i in range(n)], "ra": np.linspace(10, 11, n),
                  "dec": np.linspace(0, 1, n)}).to_csv(folder / "catalog.csv", index=False)
    return folder


class WritesAMarker:
    """Unpickled, it would create `path`: the test that nothing ran is that the file is absent."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('ran')",))


# -- fixtures: one tiny atlas and its inputs per module --------------------------------------------


@pytest.fixture(scope="module")
def given(tmp_path_factory) -> Path:
    """emb.npy (N x D float32), cat.parquet and cat.csv of the same N rows."""
    folder = tmp_path_factory.mktemp("given")
    rng = np.random.default_rng(5)
    np.save(folder / "emb.npy", rng.normal(size=(N, D)).astype(np.float32))
    catalog = pd.DataFrame({"object_id": np.arange(100, 100 + N), "ra": rng.uniform(0, 360, N),
                            "dec": rng.uniform(-60, 60, N), "type": rng.choice(["E", "S"], N)})
    catalog.to_parquet(folder / "cat.parquet", index=False)
    catalog.to_csv(folder / "cat.csv", index=False)
    write_config(folder / "given.toml", "[neighbors]\nk = 20\n")  # N = 40 galaxies: 20 neighbours each
    return folder


@pytest.fixture(scope="module")
def atlas(given: Path, tmp_path_factory) -> Path:
    """A small complete atlas, written directly (no UMAP, no probes: milliseconds)."""
    folder = tmp_path_factory.mktemp("atlas") / "atlas"
    rng = np.random.default_rng(6)
    x = np.load(given / "emb.npy")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    catalog = pd.read_parquet(given / "cat.parquet")
    catalog["umap_x"], catalog["umap_y"] = rng.normal(size=(2, N)).astype(np.float32)
    catalog["trust"] = rng.uniform(size=N).astype(np.float32)
    catalog["anomaly_score"] = rng.uniform(size=N)
    catalog["label_availability"] = pd.Categorical(["none"] * N)
    writer = AtlasWriter(folder, NAME)
    writer.write_catalog(catalog)
    writer.write_array(EMBEDDINGS, x)
    writer.write_array(NEIGHBORS, np.array([[(i + j) % N for j in (1, 2, 3)] for i in range(N)], np.int32))
    writer.write_array(SIMILARITIES, rng.uniform(size=(N, 3)).astype(np.float16))
    return folder


@pytest.fixture
def atlas_copy(atlas: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(atlas, tmp_path / "atlas"))


# -- configuration files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[train]\nbatch_sise = 16\n", ["unknown key 'train.batch_sise'", "did you mean 'train.batch_size'?"]),
        ("[model]\ntemprature = 0.1\n", ["unknown key 'model.temprature'", "did you mean 'model.temperature'?"]),
        ("[train]\nbatch_size = \"16\"\n", ["train.batch_size = '16': expected an integer"]),
        ("[survey]\nbands = \"ugriz\"\n", ["survey.bands = 'ugriz': expected a list of str"]),
        ("survey = \"data/sdss.h5\"\n", ["[survey] must be a table, found str"]),
        ("[train]\nbatch_size = 0\n", ["train.batch_size = 0: expected a value >= 2"]),
        ("[embed]\nbatch_size = -8\n", ["embed.batch_size = -8: expected a value >= 1"]),
        ("[train]\nepochs = 10\nlr = 0.03 0.1\n", ["not valid TOML", "(at line 4, column"]),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", ["arrays or tables nested too deeply"]),
        ("seed = -1\n", ["seed = -1: expected a value >= 0 and <= 4294967295"]),
        ("[model]\nqueue = 1000000000000\n", ["model.queue = 1000000000000: expected a value >= 1 and <= 1048576",
                                               "(the queue holds queue x projection_dims[-1] float32 keys"]),
        ("[model]\nprojection_dims = [100000000]\n", ["model.projection_dims = [100000000]: expected a non-empty "
                                                       "list of widths >= 1 and <= 16384 (a layer of width w"]),
        ("[simulate]\nn = 1000000000000\n", ["simulate.n = 1000000000000: expected a value >= 1 and <= 100000000",
                                              "(each galaxy is a 5-band cutout on disk"]),
        ("[train]\nbatch_size = 10000000\n", ["train.batch_size = 10000000: expected a value >= 2 and <= 65536"]),
    ],
    ids=["misspelled-key", "misspelled-key-2", "string-for-int", "string-for-list", "value-for-table",
         "zero-batch-size", "negative-batch-size", "not-toml", "toml-nested-5000-deep", "negative-seed",
         "queue-1e12", "projection-width-1e8", "simulate-1e12-galaxies", "batch-1e7"],
)
def test_a_bad_config_names_the_file_the_key_and_what_was_expected(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    config = write_config(tmp_path / "bad.toml", text)
    survey = write_h5(tmp_path / "s.h5")
    before = snapshot(tmp_path)
    refused(run_cli("inspect", survey, "--config", config), f"{config}: ", *expected)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "../elsewhere", "a/b", "", "bell\x07"])
def test_a_config_name_must_be_one_plain_line(tmp_path: Path, name: str) -> None:
    from galexplore.config import _toml_value

    config = tmp_path / "bad.toml"
    config.write_text(f"name = {_toml_value(name)}\n", encoding="utf-8")
    refused(run_cli("inspect", write_h5(tmp_path / "s.h5"), "--config", config),
            f"{config}: name = {name!r}: expected a one-line name", "without control characters or path separators")


def test_the_resolved_config_reads_back_whatever_its_strings_hold(tmp_path: Path) -> None:
    """Control characters in a path are written escaped, so the run's own config.toml reloads."""
    import dataclasses

    from galexplore.config import load_config, write_resolved

    cfg = load_config(write_config(tmp_path / "c.toml"))
    odd = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, path="/data/a\nb\t\x7f\"c\\d.h5"))
    again = load_config(write_resolved(odd, tmp_path / "run"))
    assert again.survey.path == "/data/a\nb\t\x7f\"c\\d.h5"


def _fifo(path: Path) -> Path:
    import os

    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_where_a_file_is_read_never_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO to read waits for a writer forever; every reader checks for a regular file first."""
    fifo = _fifo(tmp_path / "survey.h5")
    refused(run_cli("inspect", fifo), f"{fifo}: is a FIFO (named pipe), not a regular file; expected a survey file")
    config = write_config(tmp_path / "c.toml", survey=fifo)
    refused(run_cli("build", config, "--out", tmp_path / "atlas"), f"{fifo}: is a FIFO (named pipe)")
    assert not (tmp_path / "atlas").exists()
    fifo_config = _fifo(tmp_path / "fifo.toml")
    refused(run_cli("inspect", write_h5(tmp_path / "s.h5"), "--config", fifo_config),
            f"{fifo_config}: is a FIFO (named pipe), not a regular file; expected a TOML config file")


@pytest.mark.parametrize(("args", "expected"), [
    (("serve", "--port", "-1"), "galexplore serve: error: --port -1: expected a TCP port number from 1 to 65535"),
    (("serve", "--port", "70000"), "--port 70000: expected a TCP port number from 1 to 65535"),
    (("montage", "{survey}", "--out", "{tmp}/m.png", "--columns", "100000"),
     "--columns 100000: expected a positive integer <= 100 (each tile is at least 128 pixels wide"),
    (("montage", "{survey}", "--out", "{tmp}/m.png", "--n", "100000000"), "--n 100000000: expected a positive integer <= 10,000"),
    (("montage", "{survey}", "--out", "{tmp}/m.png", "--seed", "-1"), "--seed -1: expected an integer from 0 to 4294967295"),
    (("simulate", str(TINY), "--out", "{tmp}/s.h5", "--n", "1000000000000"),
     "--n 1000000000000: expected a positive integer <= 100,000,000 (each galaxy is a 5-band cutout"),
], ids=["port-minus-1", "port-70000", "montage-columns-100000", "montage-n-1e8", "montage-seed-minus-1", "simulate-n-1e12"])
def test_a_size_or_number_out_of_range_on_the_command_line(tmp_path: Path, args: tuple, expected: str) -> None:
    survey = write_h5(tmp_path / "s.h5")
    before = snapshot(tmp_path)
    refused(run_cli(*(a.format(survey=survey, tmp=tmp_path) for a in args)), expected)
    assert snapshot(tmp_path) == before


# -- HDF5 surveys ----------------------------------------------------------------------------------


def _truncated(path: Path) -> None:
    data = write_h5(path, cube(n=16)).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _huge_but_unallocated(path: Path) -> None:
    # (4, 5, 100000, 100000) float32 is 745 GiB: declared, chunked, never allocated on disk
    with h5py.File(path, "w") as f:
        f.create_dataset("images", shape=(4, 5, 100_000, 100_000), dtype="f4", chunks=(1, 1, 64, 64))
        f["ra"], f["dec"] = np.linspace(1, 2, 4), np.zeros(4)


def _nonfinite(value: float) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        images = cube()
        images[2, 1, 3, 3] = value
        write_h5(path, images)
    return write


HDF5_CASES = {
    "truncated": (_truncated, ["not a readable HDF5 file", "truncated file"]),
    "string-pixels": (lambda p: write_h5(p, np.full((4, 5, 2, 2), b"x", dtype="S1")),
                      ["'images' has dtype |S1; expected numbers"]),
    "complex-pixels": (lambda p: write_h5(p, cube().astype(np.complex64)),
                       ["'images' has dtype complex64; expected numbers"]),
    "nan-pixels": (_nonfinite(np.nan), ["cutout of object row 2 (object_id 12) has 1 non-finite (NaN/inf) pixels",
                                        'survey.nonfinite = "mask"']),
    "inf-pixels": (_nonfinite(np.inf), ["cutout of object row 2 (object_id 12) has 1 non-finite (NaN/inf) pixels"]),
    "catalog-shorter-than-images": (lambda p: write_h5(p, z=np.zeros(3)),
                                    ["catalog dataset 'z' has 3 rows but 'images' has 4 cutouts"]),
    "duplicate-ids": (lambda p: write_h5(p, object_id=np.array([5, 7, 9, 7])),
                      ["duplicate object_id 7 in rows 1 and 3; expected unique ids"]),
    "no-ra-dec": (lambda p: write_h5(p, ra=None, dec=None), ["catalog has no 'ra' column; found columns: object_id"]),
    "no-dec": (lambda p: write_h5(p, dec=None), ["catalog has no 'dec' column; found columns: object_id, ra"]),
    "ra-400": (lambda p: write_h5(p, ra=np.array([1.0, 400.0, 2.0, 3.0])),
               ["column 'ra' row 1 is 400.0; expected 0.0 <= ra < 360.0 degrees"]),
    "dec-minus-95": (lambda p: write_h5(p, dec=np.array([0.0, 1.0, -95.0, 2.0])),
                     ["column 'dec' row 2 is -95.0; expected -90.0 <= dec <= 90.0 degrees"]),
    "huge-declared-cutouts": (_huge_but_unallocated, ["cutouts of 5x100000x100000 (C x H x W) are absurdly large"]),
}


@pytest.mark.parametrize("case", list(HDF5_CASES))
def test_a_bad_hdf5_survey_is_refused_by_inspect(tmp_path: Path, case: str) -> None:
    write, expected = HDF5_CASES[case]
    survey = tmp_path / "survey.h5"
    write(survey)
    before = snapshot(tmp_path)
    refused(run_cli("inspect", survey), f"{survey}: ", *expected)
    assert snapshot(tmp_path) == before


def test_more_bands_than_the_config_names(tmp_path: Path) -> None:
    survey = write_h5(tmp_path / "gri.h5", cube(c=3))
    refused(run_cli("inspect", survey, "--config", TINY),
            f"{survey}: cutouts have 3 bands; expected 5 (u,g,r,i,z, survey.bands)")


def test_a_survey_path_that_does_not_exist_creates_no_atlas(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", survey=tmp_path / "nowhere.h5")
    refused(run_cli("build", config, "--out", tmp_path / "atlas"), f"{tmp_path / 'nowhere.h5'}: file not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]  # no atlas, no run folder


def test_all_zero_cutouts_cannot_be_normalised_and_leave_no_run(tmp_path: Path) -> None:
    survey = write_h5(tmp_path / "zeros.h5", np.zeros((4, 5, 16, 16), np.float32))
    config = write_config(tmp_path / "c.toml", "[augment]\ncrop_size = 8\njitter = 2\n[train]\nbatch_size = 2\n"
                          "[model]\nqueue = 64\nbn_splits = 1\n", survey=survey)
    refused(run_cli("train", config, "--out", tmp_path / "run"),
            f"{survey}: band u has no measurable noise", "expected a positive sky noise in every band")
    assert not (tmp_path / "run").exists()


# -- image-folder surveys --------------------------------------------------------------------------


def _latin1_catalog(folder: Path) -> None:
    path = folder / "catalog.csv"
    path.write_bytes(path.read_bytes().replace(b"g2.png", b"g\xe92.png"))


def _truncated_pixels(folder: Path) -> None:
    data = (folder / "g2.png").read_bytes()
    (folder / "g2.png").write_bytes(data[: len(data) // 2])


def _edit_catalog(edit: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / "catalog.csv"
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return damage


def _with_ids(folder: Path) -> None:
    table = pd.read_csv(folder / "catalog.csv")
    table.insert(0, "object_id", [10.0, np.nan, 12.0, 13.0])
    table.to_csv(folder / "catalog.csv", index=False)


IMAGE_CASES = {
    "non-utf8-csv": (_latin1_catalog, ["catalog.csv: not UTF-8 text: byte", "(line 4) is 0xe9"]),
    "duplicated-header": (_edit_catalog(lambda t: "\n".join(line + (",ra" if i == 0 else ",5.0")
                                                            for i, line in enumerate(t.splitlines())) + "\n"),
                          ["catalog.csv: column 'ra' appears twice in the header (columns 2 and 4); expected each "
                           "column name once"]),
    "file-outside-the-folder": (_edit_catalog(lambda t: t.replace("g2.png", "../g2.png")),
                                ["catalog.csv: column 'file' row 2 is '../g2.png', a path outside the survey folder"]),
    "file-absolute-path": (_edit_catalog(lambda t: t.replace("g1.png", "/etc/passwd")),
                           ["catalog.csv: column 'file' row 1 is '/etc/passwd', a path outside the survey folder"]),
    "nan-object-id": (_with_ids, ["catalog.csv: column 'object_id' row 1 is nan; expected an id (a number or a "
                                  "string) in every row"]),
    "fifo-image": (lambda f: ((f / "g0.png").unlink(), _fifo(f / "g0.png")),
                   ["g0.png (catalog row 0, catalog.csv): is a FIFO (named pipe), not a regular file"]),
    "unreadable-png": (lambda f: (f / "g0.png").write_bytes(b"not an image"),
                       ["g0.png (catalog row 0, catalog.csv): not a readable PNG/JPEG image"]),
    "truncated-png": (_truncated_pixels, ["g2.png (catalog row 2, catalog.csv): image data is corrupt or truncated"]),
    "png-header-100000x100000": (lambda f: (f / "g0.png").write_bytes(png_header_only(100_000, 100_000)),
                                 ["g0.png (catalog row 0, catalog.csv): image header claims absurdly large dimensions"]),
    "png-header-5000x5000": (lambda f: (f / "g1.png").write_bytes(png_header_only(5000, 5000)),
                             ["g1.png (catalog row 1, catalog.csv): image header claims 5000x5000 pixels"]),
    "missing-png": (lambda f: (f / "g3.png").unlink(), ["g3.png (catalog row 3, catalog.csv): image file not found"]),
}


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_a_bad_image_folder_is_refused_by_inspect(tmp_path: Path, case: str) -> None:
    damage, expected = IMAGE_CASES[case]
    folder = write_folder(tmp_path / "survey")
    damage(folder)
    before = snapshot(tmp_path)
    refused(run_cli("inspect", folder), str(folder), *expected)
    assert snapshot(tmp_path) == before


def test_a_catalog_field_of_200_kb_is_read(tmp_path: Path) -> None:
    """Python's csv module stops at 128 KiB a field; the catalog is read by pandas, which does not."""
    folder = write_folder(tmp_path / "survey")
    table = pd.read_csv(folder / "catalog.csv")
    table["notes"] = ["x" * 200_000, "short", "", "y"]
    table.to_csv(folder / "catalog.csv", index=False)
    result = run_cli("inspect", folder, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["n_objects"] == 4 and "notes" in summary["columns"]


# -- checkpoints -----------------------------------------------------------------------------------


def test_a_random_torch_file_is_not_an_encoder(tmp_path: Path) -> None:
    import torch

    torch.save(torch.zeros(3), tmp_path / "encoder.pt")
    refused(run_cli("evaluate", tmp_path / "encoder.pt"),
            f"{tmp_path / 'encoder.pt'}: not a galexplore checkpoint: it holds a Tensor")


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "ran.txt"
    torch.save({"format": "galexplore-encoder/1", "backbone": WritesAMarker(marker)}, tmp_path / "encoder.pt")
    refused(run_cli("evaluate", tmp_path / "encoder.pt"), f"{tmp_path / 'encoder.pt'}: refused",
            "Unsupported global: GLOBAL exec", "weights_only=True")
    assert not marker.exists()


def test_resnet18_weights_under_a_resnet50_config(tmp_path: Path) -> None:
    import torch

    from galexplore.config import config_from_dict, to_toml
    from galexplore.training.embed import ENCODER_FORMAT
    from galexplore.models import build_encoder
    from galexplore.survey.normalize import Normalization

    small = config_from_dict({})
    bands = list(small.survey.bands)
    torch.save({
        "format": ENCODER_FORMAT, "step": 1, "bands": bands,
        "backbone": build_encoder(small.model, in_channels=len(bands)).state_dict(),  # resnet18
        "config": to_toml(config_from_dict({"model": {"arch": "resnet50", "representation_dim": 2048}})),
        "normalization": json.dumps(Normalization(tuple(bands), (0.0,) * 5, (1.0,) * 5).to_dict()),
    }, tmp_path / "encoder.pt")
    refused(run_cli("evaluate", tmp_path / "encoder.pt"),
            f"{tmp_path / 'encoder.pt'}: weights do not fit a resnet50 encoder")


def test_resuming_from_a_checkpoint_of_another_architecture_changes_nothing(tmp_path: Path) -> None:
    import torch

    from galexplore.config import config_from_dict, to_toml
    from galexplore.training.trainer import CHECKPOINT_FORMAT

    survey = write_h5(tmp_path / "s.h5")
    train = "[augment]\ncrop_size = 8\njitter = 2\n[train]\nbatch_size = 2\n[model]\nqueue = 64\nbn_splits = 1\n"
    config = write_config(tmp_path / "c.toml", train, survey=survey)
    other = config_from_dict({"model": {"arch": "resnet50", "representation_dim": 2048, "queue": 64, "bn_splits": 1},
                              "train": {"batch_size": 2}, "augment": {"crop_size": 8, "jitter": 2}})
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": CHECKPOINT_FORMAT, "step": 3, "config": to_toml(other), "bands": list("ugriz")},
               run / "checkpoints" / "step-00000003.pt")
    before = snapshot(run)
    refused(run_cli("train", config, "--out", run),
            "step-00000003.pt: the checkpoint was trained with a different [model] section")
    assert snapshot(run) == before


# -- damaged atlases -------------------------------------------------------------------------------


def _truncate_embeddings(folder: Path) -> None:
    path = folder / EMBEDDINGS
    path.write_bytes(path.read_bytes()[:-64])


def _schema(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "schema": "galexplore-atlas/99"}))


def _pickled_embeddings(folder: Path) -> None:
    """embeddings.npy swapped for an object array whose unpickling would run code, and the
    manifest made to agree with it (size, fingerprint, shape), as a forger would."""
    path = folder / EMBEDDINGS
    np.save(path, np.array([WritesAMarker(folder.parent / "ran.txt")] * N, dtype=object), allow_pickle=True)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][EMBEDDINGS].update(bytes=path.stat().st_size, fingerprint=file_fingerprint(path),
                                         shape=[N], dtype="object")
    (folder / MANIFEST).write_text(json.dumps(manifest))


ATLAS_CASES = {
    "missing-file": (lambda f: (f / NEIGHBORS).unlink(), "neighbors.npy is listed in manifest.json but missing"),
    "truncated-npy": (_truncate_embeddings, f"embeddings.npy has {128 + N * D * 4 - 64:,} bytes, manifest.json records"),
    "foreign-schema": (_schema, "manifest.json has schema 'galexplore-atlas/99', expected 'galexplore-atlas/1'"),
    "manifest-not-json": (lambda f: (f / MANIFEST).write_text("schema = galexplore-atlas/1\n"),
                          "manifest.json is not valid JSON"),
    "catalog-swapped": (lambda f: (f / CATALOG).write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1"),
                        "catalog.parquet has 72 bytes"),
    "pickled-npy": (_pickled_embeddings, "embeddings.npy is not a readable data-only .npy file"),
    "manifest-nested-200000-deep": (lambda f: (f / MANIFEST).write_text("[" * 200_000 + "]" * 200_000),
                                    "manifest.json is not valid JSON (arrays or objects nested too deeply to read)"),
    "manifest-is-a-fifo": (lambda f: ((f / MANIFEST).unlink(), _fifo(f / MANIFEST)),
                           "manifest.json is a FIFO (named pipe), not a regular file"),
}


@pytest.mark.parametrize("case", list(ATLAS_CASES))
def test_a_damaged_atlas_is_refused_and_left_as_it_is(atlas_copy: Path, case: str) -> None:
    damage, expected = ATLAS_CASES[case]
    damage(atlas_copy)
    before = snapshot(atlas_copy)
    refused(run_cli("inspect", atlas_copy), f"atlas {atlas_copy}: ", expected)
    assert snapshot(atlas_copy) == before
    assert not (atlas_copy.parent / "ran.txt").exists()  # nothing in the atlas was run


# -- build from given embeddings and a catalog -----------------------------------------------------


def _embeddings(make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path, Path], tuple[Path, Path]]:
    def write(given: Path, tmp: Path) -> tuple[Path, Path]:
        np.save(tmp / "emb.npy", make(np.load(given / "emb.npy")))
        return tmp / "emb.npy", given / "cat.parquet"
    return write


def _catalog(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path, Path], tuple[Path, Path]]:
    def write(given: Path, tmp: Path) -> tuple[Path, Path]:
        change(pd.read_csv(given / "cat.csv")).to_csv(tmp / "cat.csv", index=False)
        return given / "emb.npy", tmp / "cat.csv"
    return write


def _with_nan(x: np.ndarray) -> np.ndarray:
    x[33, 2] = np.nan  # found while the embeddings are copied in, after the atlas is opened
    return x


def _pickled_objects(given: Path, tmp: Path) -> tuple[Path, Path]:
    np.save(tmp / "emb.npy", np.array([WritesAMarker(tmp / "ran.txt")] * N, dtype=object), allow_pickle=True)
    return tmp / "emb.npy", given / "cat.parquet"


def _latin1_csv(given: Path, tmp: Path) -> tuple[Path, Path]:
    text = (given / "cat.csv").read_text(encoding="utf-8").replace(",E\n", ",É\n", 1)
    (tmp / "cat.csv").write_bytes(text.encode("latin-1"))
    return given / "emb.npy", tmp / "cat.csv"


def _npz(given: Path, tmp: Path) -> tuple[Path, Path]:
    np.savez(tmp / "emb.npz", embeddings=np.load(given / "emb.npy"))
    return tmp / "emb.npz", given / "cat.parquet"


def _duplicated_catalog_header(given: Path, tmp: Path) -> tuple[Path, Path]:
    lines = (given / "cat.csv").read_text(encoding="utf-8").splitlines()
    (tmp / "cat.csv").write_text("\n".join([lines[0] + ",dec", *(line + ",1.0" for line in lines[1:])]) + "\n")
    return given / "emb.npy", tmp / "cat.csv"


def _no_rows(given: Path, tmp: Path) -> tuple[Path, Path]:
    np.save(tmp / "emb.npy", np.zeros((0, D), np.float32))
    pd.read_csv(given / "cat.csv").iloc[:0].to_csv(tmp / "cat.csv", index=False)
    return tmp / "emb.npy", tmp / "cat.csv"


BUILD_CASES = {
    "fewer-embeddings-than-rows": (_embeddings(lambda x: x[:-1]), [
        f"{N} catalog rows but", f"emb.npy has {N - 1} embeddings; expected one catalog row per embedding"]),
    "nan-embeddings": (_embeddings(_with_nan), ["emb.npy: row 33 has NaN or infinite values"]),
    "pickled-object-array": (_pickled_objects,
                             ["emb.npy: holds Python objects (a pickle), which galexplore never loads"]),
    "integer-embeddings": (_embeddings(lambda x: (x * 100).astype(np.int64)),
                           [f"emb.npy: embeddings of shape ({N}, {D}) and dtype int64; expected a 2-D float array"]),
    "npz-archive": (_npz, ["emb.npz: an .npz archive of arrays; expected one .npy array"]),
    "catalog-without-dec": (_catalog(lambda c: c.drop(columns="dec")),
                            ["cat.csv: catalog has 'ra' but no 'dec' column (survey.dec_column = 'dec'); expected both"]),
    "catalog-dec-minus-95": (_catalog(lambda c: c.assign(dec=np.where(c.index == 7, -95.0, c["dec"]))),
                             ["cat.csv: column 'dec' row 7 is -95.0; expected -90.0 <= dec <= 90.0 degrees"]),
    "catalog-duplicate-ids": (_catalog(lambda c: c.assign(object_id=np.where(c.index == 9, 100, c["object_id"]))),
                              ["cat.csv: duplicate object_id 100 in rows 0 and 9; expected unique ids"]),
    "catalog-not-utf8": (_latin1_csv, ["cat.csv: not UTF-8 text: byte", "is 0xc9"]),
    "no-rows": (_no_rows, ["emb.npy: 0 galaxies; expected at least neighbors.k + 1 = 21"]),
    "catalog-duplicated-header": (_duplicated_catalog_header,
                                  ["cat.csv: column 'dec' appears twice in the header (columns 3 and 5)"]),
    "catalog-nan-object-id": (_catalog(lambda c: c.assign(object_id=np.where(c.index == 5, np.nan, c["object_id"]))),
                              ["cat.csv: column 'object_id' row 5 is nan; expected an id (a number or a string) in every row"]),
    "catalog-has-umap_x": (_catalog(lambda c: c.assign(umap_x=1.0)),
                           ["cat.csv: the catalog already has a column 'umap_x', which the build writes (and would "
                            "overwrite)", "survey.rename = {umap_x = \"umap_x_in\"}"]),
    "catalog-has-trust": (_catalog(lambda c: c.assign(trust=0.5)),
                          ["cat.csv: the catalog already has a column 'trust', which the build writes"]),
}


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_build_refuses_bad_given_inputs_and_leaves_the_atlas_as_it_was(
    given: Path, atlas_copy: Path, tmp_path: Path, case: str
) -> None:
    write, expected = BUILD_CASES[case]
    embeddings, catalog = write(given, tmp_path)
    before = snapshot(atlas_copy)
    refused(run_cli("build", given / "given.toml", "--out", atlas_copy, "--embeddings", embeddings, "--catalog", catalog),
            *expected)
    assert snapshot(atlas_copy) == before
    assert not (tmp_path / "ran.txt").exists()  # nothing in a pickle was run
    assert not (tmp_path / "atlas.run").exists()


@pytest.mark.parametrize("case", ["nan-embeddings", "no-rows", "catalog-has-trust"])
def test_a_refused_build_into_a_new_folder_leaves_nothing(given: Path, tmp_path: Path, case: str) -> None:
    write, expected = BUILD_CASES[case]
    embeddings, catalog = write(given, tmp_path)
    out = tmp_path / "new-atlas"
    refused(run_cli("build", given / "given.toml", "--out", out, "--embeddings", embeddings, "--catalog", catalog),
            *expected)
    assert not out.exists()  # no embeddings.npy, no manifest.json: nothing that looks like an atlas
    assert not (tmp_path / "new-atlas.run").exists()


CONFIG_BUILD_CASES = {
    "missing-label-column": ('[trust]\nlabels = {"spec-z" = "zspec"}\n',
                             ["cat.csv: trust.labels names column 'zspec' (label kind 'spec-z'), which the catalog lacks"]),
    "text-label-column": ('[trust]\nlabels = {"morphology" = "type"}\n',
                          ["cat.csv: trust.labels column 'type' (label kind 'morphology') holds", "expected numbers"]),
    "missing-probe-column": ('[probes]\nmorphology = ["p_ring"]\n',
                             ["cat.csv: probes.morphology[0] names column 'p_ring', which the catalog lacks"]),
    "probe-column-outside-0-1": ('[probes]\nmorphology = ["ra"]\n',
                                 ["cat.csv: probes.morphology[0] column 'ra' row ",
                                  "expected a value in [0, 1] (a vote fraction or a 0/1 flag) or a missing value"]),
}


@pytest.mark.parametrize("case", list(CONFIG_BUILD_CASES))
def test_build_refuses_label_and_probe_columns_the_catalog_cannot_give(given: Path, tmp_path: Path, case: str) -> None:
    text, expected = CONFIG_BUILD_CASES[case]
    config = write_config(tmp_path / "c.toml", "[neighbors]\nk = 20\n" + text)
    refused(run_cli("build", config, "--out", tmp_path / "atlas", "--embeddings", given / "emb.npy",
                    "--catalog", given / "cat.csv"), *expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_build_refuses_an_out_folder_that_holds_its_own_inputs(given: Path, atlas_copy: Path, tmp_path: Path) -> None:
    """The probe's case: an atlas rebuilt from its own embeddings and catalog would re-normalise
    and rewrite them in place."""
    before = snapshot(atlas_copy)
    refused(run_cli("build", given / "given.toml", "--out", atlas_copy, "--embeddings", atlas_copy / EMBEDDINGS,
                    "--catalog", atlas_copy / CATALOG),
            f"{atlas_copy / EMBEDDINGS}: the --embeddings file is inside the output folder {atlas_copy}")
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(given / "cat.parquet", folder / "catalog.parquet")
    refused(run_cli("build", given / "given.toml", "--out", folder, "--embeddings", given / "emb.npy",
                    "--catalog", folder / "catalog.parquet"),
            f"{folder / 'catalog.parquet'}: the --catalog file is inside the output folder {folder}")
    config = write_config(tmp_path / "c.toml", survey=write_h5(folder / "survey.h5"))
    refused(run_cli("build", config, "--out", folder), "survey.h5: the survey (survey.path) is inside the output folder")
    assert snapshot(atlas_copy) == before
    assert sorted(p.name for p in folder.iterdir()) == ["catalog.parquet", "survey.h5"]


def test_build_refuses_an_out_folder_of_other_files(given: Path, tmp_path: Path) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "draft.tex").write_text("my paper\n")
    before = snapshot(folder)
    refused(run_cli("build", given / "given.toml", "--out", folder, "--embeddings", given / "emb.npy",
                    "--catalog", given / "cat.parquet"),
            f"{folder}: a folder of 1 other file (draft.tex) and no manifest.json, not an atlas; refusing to write")
    assert snapshot(folder) == before


@pytest.fixture(scope="module")
def odd_build(given: Path, tmp_path_factory) -> tuple[np.ndarray, Path]:
    """One build (the UMAP is most of its seconds) from odd but valid inputs: embedding row 7 is
    row 3's direction at float32's limit (1e38), and the catalog has a list-valued column.
    (the given embeddings, the atlas)."""
    folder = tmp_path_factory.mktemp("odd")
    x = np.load(given / "emb.npy")
    x[7] = x[3] * np.float32(1e38) / np.abs(x[3]).max()
    np.save(folder / "emb.npy", x)
    catalog = pd.read_parquet(given / "cat.parquet")
    catalog["bands_seen"] = [["g", "r"] if i % 2 else ["z"] for i in range(N)]
    catalog.to_parquet(folder / "cat.parquet", index=False)
    result = run_cli("build", given / "given.toml", "--out", folder / "atlas", "--embeddings", folder / "emb.npy",
                     "--catalog", folder / "cat.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    return x, folder / "atlas"


def test_an_embedding_of_1e38_keeps_its_direction(odd_build: tuple[np.ndarray, Path]) -> None:
    """Its norm overflows float32: the row is scaled by its largest value first, so it is stored as
    the unit vector it points along (not zeros), and the twin it points with is its neighbour."""
    x, out = odd_build
    stored = np.load(out / EMBEDDINGS)
    np.testing.assert_allclose(stored[7], x[3] / np.linalg.norm(x[3]), atol=1e-6)
    assert np.load(out / NEIGHBORS)[7, 0] == 3 and np.load(out / NEIGHBORS)[3, 0] == 7


def test_a_list_valued_catalog_column_builds_and_is_kept(odd_build: tuple[np.ndarray, Path]) -> None:
    """The build carries the column through; the explorer skips it as a colouring with a note
    (tests/test_app.py::test_a_list_valued_column_is_skipped_with_a_note_and_the_page_works)."""
    from galexplore.atlas.files import open_atlas

    catalog = open_atlas(odd_build[1]).read_catalog()
    assert [list(v) for v in catalog["bands_seen"][:2]] == [["z"], ["g", "r"]]
    assert catalog["umap_x"].notna().all()


def test_an_out_path_that_is_a_file_is_left_alone(given: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    refused(run_cli("build", given / "given.toml", "--out", notes, "--embeddings", given / "emb.npy",
                    "--catalog", given / "cat.parquet"), f"{notes}: not a folder (a file of that name exists)")
    refused(run_cli("simulate", TINY, "--out", notes, "--n", "2", "--workers", "1"),
            f"{notes}: exists and is not a survey that galexplore simulated; refusing to overwrite it")
    assert notes.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_out_path_that_is_a_folder_for_a_file(tmp_path: Path) -> None:
    survey = write_h5(tmp_path / "s.h5")
    (tmp_path / "montage.png").mkdir()
    refused(run_cli("montage", survey, "--out", tmp_path / "montage.png", "--n", "4"),
            f"{tmp_path / 'montage.png'}: is a folder; expected the name of a file to write")
    assert list((tmp_path / "montage.png").iterdir()) == []


# -- what the app calls: exports and uploads -------------------------------------------------------


def test_an_empty_selection_is_not_exported(atlas: Path) -> None:
    from galexplore.atlas.export import export_selection

    catalog = pd.read_parquet(atlas / CATALOG)
    with pytest.raises(GalexploreError, match="the selection is empty: nothing to export"):
        export_selection(catalog, np.array([], dtype=np.int64), "csv")


def test_a_csv_export_cannot_run_as_a_spreadsheet_formula(atlas: Path) -> None:
    """OWASP's CSV injection: text cells (and column names) starting with = + - @, a tab or a
    carriage return get a leading single quote; number columns stay numbers, negative ones too."""
    import csv
    import io

    from galexplore.atlas.export import export_selection

    catalog = pd.read_parquet(atlas / CATALOG).head(7).copy()
    catalog["type"] = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "NGC 4414"]
    catalog["=HYPERLINK(0)"] = -1.5 * np.arange(7)
    rows = list(csv.reader(io.StringIO(export_selection(catalog, np.arange(7), "csv").decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    assert "'=HYPERLINK(0)" in header and "=HYPERLINK(0)" not in header
    types = [row[header.index("type")] for row in body]
    assert types == ["'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\rx", "NGC 4414"]
    numbers = [row[header.index("'=HYPERLINK(0)")] for row in body]
    assert [float(v) for v in numbers] == (-1.5 * np.arange(7)).tolist() and numbers[1] == "-1.5"
    np.testing.assert_allclose([float(row[header.index("dec")]) for row in body], catalog["dec"], rtol=1e-12)


def _fits(hdu_of: Callable[[], object], rows: int | None = None) -> bytes:
    """A FITS file of one HDU; `rows` rewrites its NAXIS2 card (a header claiming absurdly many)."""
    import io

    buffer = io.BytesIO()
    hdu_of().writeto(buffer)
    data = buffer.getvalue()
    if rows is not None:
        at = data.index(b"NAXIS2  =")
        data = data[:at] + b"NAXIS2  = %20d" % rows + data[at + 30:]
    return data


def _image_hdu() -> object:
    from astropy.io import fits

    return fits.PrimaryHDU(np.zeros((4, 4), np.float32))


def _table_hdu() -> object:
    from astropy.io import fits
    from astropy.table import Table

    return fits.table_to_hdu(Table({"ra": np.arange(3.0), "dec": np.zeros(3)}))


UPLOAD_CASES = {
    "no-coordinates": (b"name,z\nNGC 1,0.1\n", "targets.csv",
                       "targets.csv: no 'ra' column; expected one column each of ra and dec in degrees (any case); "
                       "found columns: name, z"),
    "only-ra": (b"RA,z\n10.0,0.1\n", "targets.csv", "targets.csv: no 'dec' column"),
    "non-numeric-ra": (b"RA,DEC\n10.5,1\n10h42m,2\n", "targets.csv",
                       "targets.csv: column 'ra' row 1 is '10h42m'; expected degrees"),
    "ra-400": (b"ra,dec\n400,1\n", "targets.csv", "targets.csv: column 'ra' row 0 is 400.0; expected 0.0 <= ra < 360.0"),
    "too-large": (b"ra,dec\n" + b"10.0,1.0\n" * 1200, "big.csv",
                  "big.csv: 10,807 bytes; an uploaded catalog may have at most 10,000 bytes"),
    "not-a-table-fits": (_fits(_image_hdu), "image.fits", "image.fits: no table HDU; expected a FITS binary table"),
    "fits-claims-1e11-rows": (_fits(_table_hdu, rows=10**11), "big.fits",
                              "big.fits: the table header declares more data than the file holds"),
    "png-as-parquet": (png_header_only(8, 8), "targets.parquet", "targets.parquet: not a readable Parquet file"),
    "html-as-votable": (b"<?xml version='1.0'?><html><body>hi</body></html>", "targets.vot",
                        "targets.vot: not a readable VOTable"),
    "unknown-format": (b"\x80\x04K\x01.", "targets.pkl", "targets.pkl: unknown catalog format '.pkl'; expected one of"),
    "path-in-name": (b"x,y\n1,2\n", "../../etc/targets.csv", "targets.csv: no 'ra' column"),
}


@pytest.mark.parametrize("case", list(UPLOAD_CASES))
def test_an_uploaded_catalog_must_be_a_table_with_positions(case: str) -> None:
    from galexplore.atlas.export import read_uploaded_catalog

    data, filename, expected = UPLOAD_CASES[case]
    with pytest.raises(GalexploreError) as error, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # astropy's "may have been truncated", then ours
        read_uploaded_catalog(data, filename, max_bytes=10_000)
    message = str(error.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_an_uploaded_catalog_is_read_in_any_format_with_ra_dec_in_any_case(atlas: Path) -> None:
    from galexplore.atlas.export import EXPORT_FORMATS, export_selection, read_uploaded_catalog

    catalog = pd.read_parquet(atlas / CATALOG).rename(columns={"ra": "RA", "dec": "Dec"})
    for fmt, spec in EXPORT_FORMATS.items():
        table = read_uploaded_catalog(export_selection(catalog, np.arange(5), fmt), f"mine{spec.suffix}")
        np.testing.assert_array_equal(table["ra"], catalog["RA"][:5], err_msg=fmt)
        np.testing.assert_array_equal(table["dec"], catalog["Dec"][:5], err_msg=fmt)
        assert table["ra"].dtype == np.float64
