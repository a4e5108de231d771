"""Config: presets load, every mistake names the file, the key and the value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from galexplore.config import Config, config_from_dict, load_config, to_toml, write_resolved
from galexplore.errors import ConfigError

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


@pytest.mark.parametrize("name", ["tiny", "demo", "sdss", "legacysurvey"])
def test_presets_load_and_round_trip(name: str) -> None:
    cfg = load_config(PIPELINES / f"{name}.toml")
    assert cfg.name == name
    again = config_from_dict(tomllib.loads(to_toml(cfg)))
    assert again.survey == cfg.survey and again.simulate == cfg.simulate
    assert again.model == cfg.model and again.augment == cfg.augment and again.train == cfg.train


def test_presets_match_the_published_setups() -> None:
    sdss = load_config(PIPELINES / "sdss.toml")
    assert sdss.survey.bands == ("u", "g", "r", "i", "z")
    assert (sdss.survey.image_size, sdss.augment.crop_size, sdss.augment.jitter) == (107, 64, 7)
    assert (sdss.model.arch, sdss.model.representation_dim) == ("resnet50", 2048)
    assert sdss.survey.rename == {"specz_redshift": "z_spec"}
    legacy = load_config(PIPELINES / "legacysurvey.toml")
    assert legacy.survey.bands == ("g", "r", "z")
    assert (legacy.survey.image_size, legacy.augment.crop_size) == (152, 96)


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.toml").write_text('[survey]\npath = "../surveys/x.h5"\n')
    cfg = load_config(tmp_path / "sub" / "c.toml")
    assert cfg.resolve(cfg.survey.path) == tmp_path / "surveys" / "x.h5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[survey]\nbnds = ["g"]\n', ["survey.bnds", "did you mean 'survey.bands'"]),
        ("[trian]\nepochs = 3\n", ["'trian'", "did you mean 'train'"]),
        ('[train]\nepochs = "ten"\n', ["train.epochs", "'ten'", "an integer"]),
        ("[train]\nepochs = 2.5\n", ["train.epochs", "2.5", "an integer"]),
        ("[train]\nlr = -0.1\n", ["train.lr", "-0.1", "> 0"]),
        ("[simulate]\nanomaly_rate = 1.5\n", ["simulate.anomaly_rate", "1.5", "<= 1"]),
        ('[model]\narch = "vit"\n', ["model.arch", "'vit'", "'resnet18'"]),
        ("[simulate]\nn = true\n", ["simulate.n", "True", "an integer"]),
        ("[survey]\nbands = \"ugriz\"\n", ["survey.bands", "a list of str"]),
        ("[simulate]\nz_min = 0.5\nz_max = 0.2\n", ["simulate.z_min", "0.5", "z_max"]),
        ('[survey]\nbands = ["g", "r"]\n', ["augment.extinction", "5 values", "2"]),
        ("survey = 3\n", ["[survey] must be a table"]),
        ("name = \n", ["not valid TOML"]),
    ],
)
def test_a_bad_config_names_file_key_and_value(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_missing_and_non_utf8_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "latin.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin.toml")


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]


def test_write_resolved_writes_a_loadable_config(tmp_path: Path) -> None:
    cfg = load_config(PIPELINES / "demo.toml")
    path = write_resolved(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.toml"
    again = load_config(path)
    assert again.train == cfg.train and again.survey.bands == cfg.survey.bands
    # the survey path is absolute now, so the copy finds the same file from its own folder
    assert again.resolve(again.survey.path) == cfg.resolve(cfg.survey.path)
    assert not list((tmp_path / "run").glob("*.partial"))
