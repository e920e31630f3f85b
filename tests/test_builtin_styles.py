"""Built-in styles and shipped configs by name, offline: `--style starry_night`, `style: udnie`, `-c udnie`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

from infer.app.catalogue import find_style
from nst_core.builtin_styles import BUILTIN_STYLES, NOT_SHIPPED, STYLES_DIR, builtin_style_path
from nst_core.checkpoint_io import load_network
from nst_core.errors import NSTError
from nst_core.image_io import display_name, open_image
from tests.helpers import one_error_line, photo, run_cli
from train.config import config_file, read_yaml, shipped_configs

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
#: A train run as cheap as `tests/conftest.tiny_train_config`: 48 px crops, 1 step of the small network.
TINY_TRAIN = ["--variant", "small", "--image-size", "48", "--batch-size", "2", "--num-workers", "0", "--max-steps", "1"]
TINY_TRAIN += ["--num-samples", "2", "--report-to", "none", "-q"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two real photos at 64 px: enough data for one training step."""
    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut.png", "chelsea.png"):
        photo(root, name, size=64)
    return root


# ------------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize("name", list(BUILTIN_STYLES))
def test_every_built_in_style_opens_as_rgb_at_most_1024_px(name: str) -> None:
    img = open_image(name)
    assert img.mode == "RGB" and 256 <= max(img.size) <= 1024, img.size
    assert display_name(name) == name


def test_only_the_built_in_styles_ship() -> None:
    assert sorted(p.name for p in STYLES_DIR.glob("*.jpg")) == sorted(f"{n}.jpg" for n in BUILTIN_STYLES)
    assert not set(BUILTIN_STYLES) & set(NOT_SHIPPED)


def test_an_existing_file_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (8, 6), "red").save(tmp_path / "starry_night", format="PNG")  # a file named like a style
    monkeypatch.chdir(tmp_path)
    assert open_image("starry_night").size == (8, 6)


@pytest.mark.parametrize("name", list(NOT_SHIPPED))
def test_a_style_that_cannot_ship_says_where_to_get_it(name: str) -> None:
    with pytest.raises(NSTError) as e:
        open_image(name)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{name}: not public domain")
    assert f"fast_neural_style/images/style-images/{NOT_SHIPPED[name]}" in message and "pytorch/examples" in message
    assert "--style PATH" in message


def test_other_missing_names_keep_the_file_not_found_error() -> None:
    with pytest.raises(NSTError, match=r"^starry_nite: no such file$"):
        open_image("starry_nite")


def test_sources_md_lists_each_shipped_file_and_the_true_total() -> None:
    text = (STYLES_DIR / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(STYLES_DIR.glob("*.jpg"))
    for p in files:
        row = next((line for line in text.splitlines() if line.startswith(f"| {p.name} |")), "")
        assert str(p.stat().st_size) in row and re.search(r"\b[0-9a-f]{40}\b", row), p.name  # bytes, commit
    assert f"{sum(p.stat().st_size for p in files):,} bytes" in text


def test_style_help_names_the_built_in_styles(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("optimize", "train", "compare"):
        with pytest.raises(SystemExit):
            run_cli([command, "--help"], capsys)
        text = " ".join(capsys.readouterr().out.split())
        assert "or a built-in style: " + ", ".join(BUILTIN_STYLES) in text, command


def test_the_app_finds_a_built_in_style_named_in_a_run_config(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "wave"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("style: great_wave\n", encoding="utf-8")
    assert find_style(run) == builtin_style_path("great_wave")


# ------------------------------------------------------------------------------------------------ commands


def test_optimize_takes_a_built_in_style(tmp_path: Path, content_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    code, stdout, _ = run_cli(
        ["optimize", str(content_path), "--style", "udnie", "-o", str(out), "--size", "48", "--steps", "2", "--json"],
        capsys,
    )
    assert code == 0 and json.loads(stdout)["output"] == str(out) and Image.open(out).size == (48, 48)


def test_train_takes_a_shipped_config_by_name_and_its_style_by_name(tmp_path: Path, photos: Path, capsys) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "-c", "udnie", "--data", str(photos), "-o", str(run), *TINY_TRAIN], capsys)
    assert code == 0, err
    saved = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert saved["style"] == "udnie" and saved["variant"] == "small"  # the config's style by name; TINY_TRAIN's variant


def test_train_style_flag_takes_a_built_in_name(tmp_path: Path, photos: Path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["train", "--style", "shipwreck", "--data", str(photos), "-o", str(run), *TINY_TRAIN, "--json"]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    assert yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["style"] == "shipwreck"
    assert load_network(json.loads(stdout)["network"])[1]["style"] == "shipwreck"  # the metadata names it


def test_a_config_naming_a_style_that_cannot_ship_exits_2_before_any_run_folder(
    tmp_path: Path, photos: Path, capsys
) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "-c", "candy", "--data", str(photos), "-o", str(run), *TINY_TRAIN], capsys)
    assert code == 2 and not run.exists()
    one_error_line(err, "candy", "not public domain", "pytorch/examples", "style-images/candy.jpg", "--style PATH")


def test_an_unknown_config_name_exits_2_listing_the_shipped_ones(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["train", "-c", "starry", "--data", str(tmp_path), "-o", str(tmp_path / "r")], capsys)
    assert code == 2
    one_error_line(err, "starry: no such config file", ", ".join(shipped_configs()))


# ------------------------------------------------------------------------------------------------ configs


def test_shipped_configs_are_the_repository_configs_folder() -> None:
    shipped = shipped_configs()
    assert {p.name for p in shipped.values()} == {p.name for p in (ROOT / "configs").glob("*.yaml")}
    assert config_file("starry_night") == config_file("starry_night.yaml") == shipped["starry_night"]
    assert config_file("missing/starry_night.yaml") == Path("missing/starry_night.yaml")  # a path stays a path


def test_shipped_configs_are_self_contained() -> None:
    for name, path in shipped_configs().items():
        style = read_yaml(path).get("style")
        if name not in ("default", "fast", "cpu", "size512"):  # recipes for any style (--style)
            assert style == name and (style in BUILTIN_STYLES or style in NOT_SHIPPED), path


def test_a_config_style_name_stays_a_name_unless_a_file_of_that_name_is_beside_it(tmp_path: Path) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("style: starry_night\n", encoding="utf-8")
    assert read_yaml(config)["style"] == "starry_night"
    Image.new("RGB", (8, 6)).save(tmp_path / "starry_night", format="PNG")
    assert read_yaml(config)["style"] == str((tmp_path / "starry_night").resolve())
