"""The embed path (`galexplore.training.embed.represent`): equal to a straightforward reference, resumable,
and read ahead in order by `galexplore.training.prefetch`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from galexplore.training.embed import prepare, prepare_cutouts, represent
from galexplore.errors import GalexploreError, SurveyError
from galexplore.survey.normalize import LUPTON_SOFTENING, Normalization
from galexplore.training.prefetch import prefetch
from galexplore.survey.hdf5 import HDF5Survey

N, BANDS, SIZE, CROP = 45, 3, 20, 15  # an odd margin: the crop starts at (20 - 15) // 2 = 2
BACKGROUND, NOISE = (0.1, -0.2, 0.0), (0.5, 1.0, 2.0)
# float32 tolerance on unit-length representations: numpy's asinh differs from torch's (and
# channels_last convolutions from contiguous ones) by a few ulp
ATOL = 1e-5


@pytest.fixture(scope="module")
def cutouts() -> np.ndarray:
    """Seeded blobs of random size and brightness on noise, float32 (N, BANDS, SIZE, SIZE)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    width = rng.uniform(1.0, 4.0, N)[:, None, None, None]
    flux = rng.lognormal(2.0, 1.0, (N, BANDS))[:, :, None, None]
    images = flux * np.exp(-(xx**2 + yy**2) / (2 * width**2)) + rng.normal(0, 1.0, (N, BANDS, SIZE, SIZE))
    return images.astype(np.float32)


@pytest.fixture(scope="module")
def survey_path(cutouts: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("embed") / "survey.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=cutouts, chunks=(1, BANDS, SIZE, SIZE))
        f["ra"] = np.linspace(0, 10, N)
        f["dec"] = np.linspace(-5, 5, N)
        f.attrs["bands"] = ["g", "r", "z"]
    return path


@pytest.fixture()
def survey(survey_path: Path):
    with HDF5Survey(survey_path) as s:
        yield s


@pytest.fixture(scope="module")
def normalization() -> Normalization:
    return Normalization(bands=("g", "r", "z"), background=BACKGROUND, noise=NOISE)


def _net(seed: int = 0) -> nn.Module:
    """A small convolutional backbone with batch norm (so eval mode matters): (B, 3, h, w) -> (B, 16)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(BANDS, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )


def _reference(net: nn.Module, cutouts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Read all, crop, normalise in float64, one forward pass, unit length: the plain way."""
    x = cutouts[rows][:, :, 2 : 2 + CROP, 2 : 2 + CROP].astype(np.float64)
    scale = np.asarray(NOISE)[:, None, None] * LUPTON_SOFTENING
    x = np.arcsinh((x - np.asarray(BACKGROUND)[:, None, None]) / scale)
    net.eval()
    with torch.no_grad():
        h = net(torch.from_numpy(x.astype(np.float32)))
    return torch.nn.functional.normalize(h, dim=1).numpy()


@pytest.mark.parametrize("read_ahead", [False, True], ids=["inline", "thread"])
def test_represent_equals_the_plain_reference_in_batches_of_any_size(survey, cutouts, normalization, read_ahead, monkeypatch):
    import galexplore.training.embed

    monkeypatch.setattr(galexplore.training.embed, "reads_ahead", lambda device: read_ahead)
    net = _net()
    rows = np.arange(N)
    expected = _reference(net, cutouts, rows)
    net.train()
    for batch_size in (7, 45, 64):
        got = represent(net, survey, rows, normalization, CROP, torch.device("cpu"), batch_size=batch_size)
        assert got.shape == (N, 16) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert net.training  # its mode given back
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_represent_of_scattered_rows_and_of_a_channels_last_backbone(survey, cutouts, normalization):
    """Unsorted rows with repeats take the general read; channels_last weights change no value."""
    rows = np.array([40, 3, 3, 17, 0, 44, 18, 19, 20, 2])
    net = _net()
    expected = _reference(net, cutouts, rows)
    got = represent(net, survey, rows, normalization, CROP, torch.device("cpu"), batch_size=4)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    fast = _net().to(memory_format=torch.channels_last)
    got = represent(fast, survey, rows, normalization, CROP, torch.device("cpu"), batch_size=4)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert represent(net, survey, rows[:0], normalization, CROP, torch.device("cpu")).shape == (0, 0)


def test_reading_processes_give_what_this_process_gives(survey, normalization):
    net = _net()
    rows = np.arange(5, 35)
    here = represent(net, survey, rows, normalization, CROP, torch.device("cpu"), batch_size=8, workers=0)
    process = represent(net, survey, rows, normalization, CROP, torch.device("cpu"), batch_size=8, workers=1)
    np.testing.assert_array_equal(process, here)


def test_prepare_cutouts_crops_first_and_equals_prepare(cutouts, normalization):
    got = prepare_cutouts(cutouts, normalization, CROP)
    assert got.shape == (N, BANDS, CROP, CROP) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, normalization(cutouts[:, :, 2:17, 2:17]))
    torch_values = prepare(torch.from_numpy(cutouts), normalization, CROP).numpy()
    np.testing.assert_allclose(got, torch_values, rtol=1e-6, atol=1e-6)  # asinh: up to 2 ulp apart
    last = prepare_cutouts(cutouts, normalization, CROP, channels_last=True)
    np.testing.assert_array_equal(last, got)
    assert torch.from_numpy(last).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(GalexploreError, match="21x21 centre crop does not fit 20x20"):
        prepare_cutouts(cutouts, normalization, 21)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_normalization_into_out_equals_the_plain_call(cutouts, normalization, dtype):
    images = (cutouts * 10).astype(dtype)
    out = np.empty(images.shape, dtype=np.float32)
    assert normalization(images, out=out) is out
    np.testing.assert_array_equal(out, normalization(images))
    with pytest.raises(GalexploreError, match="expected float32"):
        normalization(images, out=np.empty(images.shape, dtype=np.float64))


def test_consecutive_rows_read_as_one_slice_equal_the_file(survey, survey_path, cutouts):
    np.testing.assert_array_equal(survey.read(np.arange(10, 30)), cutouts[10:30])
    np.testing.assert_array_equal(survey.read([44]), cutouts[44:])
    channels_last = survey_path.with_name("channels_last.h5")
    with h5py.File(channels_last, "w") as f:
        f["images"] = cutouts.transpose(0, 2, 3, 1).astype(np.float64)
        f["ra"], f["dec"] = np.zeros(N), np.zeros(N)
        f.attrs["bands"] = ["g", "r", "z"]
    from galexplore.config import SurveyConfig

    with HDF5Survey(channels_last, SurveyConfig(source="hdf5", bands=(), layout="channels_last")) as other:
        block = other.read(np.arange(3, 9))
        assert block.dtype == np.float32 and block.flags.c_contiguous
        np.testing.assert_array_equal(block, cutouts[3:9])


@pytest.mark.parametrize("read_ahead", [False, True], ids=["inline", "thread"])
def test_an_embedding_killed_in_a_chunk_resumes_to_the_uninterrupted_result(
    survey, normalization, tmp_path, monkeypatch, read_ahead
):
    """The embed stage's chunks: a failure inside chunk 2 keeps chunk 1 and writes nothing of
    chunk 2; the rerun computes only the missing chunks and assembles the same array."""
    import galexplore.training.embed
    from galexplore.atlas.files import AtlasWriter
    from galexplore.pipeline.chunks import assemble, run_chunks
    from galexplore.training.distributed import Distributed

    monkeypatch.setattr(galexplore.training.embed, "reads_ahead", lambda device: read_ahead)
    net = _net()
    calls = []

    def compute(start: int, stop: int) -> np.ndarray:
        calls.append(start)
        return represent(net, survey, np.arange(start, stop), normalization, CROP, torch.device("cpu"), batch_size=8)

    def assembled(folder: Path) -> np.ndarray:
        writer = AtlasWriter(folder, "resume")
        assemble(folder / "work", writer, "embeddings.npy", N, 20, np.float32)
        return np.load(folder / "embeddings.npy")

    whole = tmp_path / "whole"
    run_chunks(whole / "work", N, 20, compute, Distributed(), lambda done: None)
    real_read, reads = HDF5Survey._read, [0]

    def failing_read(self, indices):
        reads[0] += 1
        if reads[0] == 5:  # the second batch of the second chunk (20 rows in batches of 8)
            raise SurveyError("disk went away")
        return real_read(self, indices)

    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        patch.setattr(HDF5Survey, "_read", failing_read)
        with pytest.raises(SurveyError, match="disk went away"):
            run_chunks(killed / "work", N, 20, compute, Distributed(), lambda done: None)
    assert sorted(p.name for p in (killed / "work").iterdir()) == ["chunk-000000.npy"]
    calls.clear()
    run_chunks(killed / "work", N, 20, compute, Distributed(), lambda done: None)
    assert calls == [20, 40]
    np.testing.assert_array_equal(assembled(killed), assembled(whole))


def test_prefetch_keeps_the_order_of_a_slow_uneven_reader():
    rng = np.random.default_rng(0)
    delays = rng.uniform(0, 0.002, 60)

    def items():
        for i, delay in enumerate(delays):
            time.sleep(delay)
            yield i

    assert list(prefetch(items(), depth=3)) == list(range(60))


def test_prefetch_raises_the_readers_error_after_the_items_before_it():
    def items():
        yield from range(3)
        raise SurveyError("survey.h5: cannot read 'images' rows 3..5; the file may be truncated")

    got = []
    with pytest.raises(SurveyError, match=r"rows 3\.\.5; the file may be truncated") as info:
        for item in prefetch(items()):
            got.append(item)
    assert got == [0, 1, 2]
    assert any("background thread" in note for note in info.value.__notes__)


def test_prefetch_closed_early_stops_its_thread():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    before = threading.active_count()
    stream = prefetch(items(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert threading.active_count() == before
    assert len(made) <= 3 + 2 + 1  # taken, queued, and the one in hand when it stopped
    with pytest.raises(ValueError, match="depth = 0"):
        next(prefetch(iter([1]), depth=0))
