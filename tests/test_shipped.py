"""Shipped pretrained models: a tiny run shipped with `tools/ship.py` into a temporary models folder, found by
name everywhere a model is taken, listed by `nst models`; and every model in the real ``infer/models``
loads, stylizes and has its card."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from infer.models import shipped
from infer.stylize.stylizer import Stylizer
from nst_core.checkpoint_io import NETWORK_FILE, save_network
from nst_core.errors import NSTError
from nst_core.image_io import display_name
from tests.helpers import one_error_line, photo, run_cli, skimage_photo, tiny_net, tiny_train_config
from tools.ship import provenance, ship
from train.config import save_yaml

REPO = Path(__file__).resolve().parents[1]
RUN = {"capture_output": True, "text": True, "timeout": 120, "cwd": REPO}
FACTS = {
    "data": "12 photos of a test folder",
    "hardware": "a test CPU",
    "how": "Trained from scratch at 48 px, then continued at 64 px.",
    "stages": [
        {"steps": 8, "batch_size": 2, "image_size": 48, "wall_time": 75},
        {"steps": 4, "image_size": 64, "wall_time": "3 min", "hardware": "another CPU"},
    ],
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, style_path: Path) -> Path:
    """A run folder as `nst train` leaves it (config.yaml, network.safetensors with style, config and step)."""
    run = tmp_path_factory.mktemp("tiny_run")
    cfg = tiny_train_config(run, run / "photos", style_path)
    save_yaml(cfg, run / "config.yaml")
    meta = {"style": display_name(cfg.style), "config": cfg.to_dict(), "step": 12}
    save_network(tiny_net(), run / NETWORK_FILE, meta)
    return run


@pytest.fixture(scope="module")
def report_64(tiny_run: Path, tmp_path_factory) -> Path:
    """A real `nst compare --metric model` report folder of the tiny run (64 px, 2 steps)."""
    from nst_core.cli import main

    out = tmp_path_factory.mktemp("report") / "r64"
    argv = ["compare", "skimage:chelsea", "skimage:coffee", "-s", "skimage:coffee", "-m", str(tiny_run)]
    assert main([*argv, "-o", str(out), "--size", "64", "--steps", "1,2", "--metric", "model", "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def shipped_tiny(tiny_run: Path, report_64: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(models folder, docs folder) after shipping the tiny run as ``tiny_style``."""
    root = tmp_path_factory.mktemp("ship")
    facts = root / "facts.yaml"
    facts.write_text(yaml.safe_dump(FACTS))
    models, docs = root / "models", root / "docs"
    ship(
        tiny_run,
        "tiny_style",
        models=models,
        docs=docs,
        facts_file=facts,
        compare=[report_64],
        photos=["skimage:chelsea"],
    )
    return models, docs


@pytest.fixture
def models_env(shipped_tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(shipped.MODELS_ENV, str(shipped_tiny[0]))
    return shipped_tiny[0]


# ---------------------------------------------------------------------------------------------- shipping a run


def test_shipped_metadata_is_the_facts(shipped_tiny: tuple[Path, Path], report_64: Path) -> None:
    import onnx

    (model,) = shipped.shipped_models(shipped_tiny[0])
    meta = model.metadata
    assert meta == {p.key: p.value for p in onnx.load(str(model.path)).metadata_props}  # the protobuf reader
    assert model.name == meta[shipped.NAME_KEY] == "tiny_style" and meta[shipped.STYLE_KEY] == "coffee"
    assert meta[shipped.DATA_KEY] == FACTS["data"] and meta[shipped.HOW_KEY] == FACTS["how"]
    stages = json.loads(meta[shipped.TRAINING_KEY])
    assert [(s["steps"], s["batch_size"], s["image_size"], s["images_seen"]) for s in stages] == [
        (8, 2, 48, 16),
        (4, 2, 64, 8),  # batch from the run's config, images seen = steps x batch
    ]
    assert [s["wall_time"] for s in stages] == ["1 min", "3 min"]
    assert [s["hardware"] for s in stages] == ["a test CPU", "another CPU"]
    assert json.loads(meta[shipped.LOSS_KEY])["style"] == tiny_train_config(Path("r"), Path("d"), Path("s")).loss.style
    report = json.loads((report_64 / "report.json").read_text())
    figures = json.loads(meta[shipped.COMPARE_KEY])["64"]
    assert [p["name"] for p in figures["photos"]] == ["chelsea", "coffee"] and figures["max_steps"] == 2
    assert [p["iterations"] for p in figures["photos"]] == [im["iterations"] for im in report["summary"]["per_image"]]
    assert meta["nst.precision"] == "fp32" and meta["nst.variant"] == "small"  # small: well under 2 MB
    assert shipped.STYLE_SOURCE_KEY not in meta  # coffee is no built-in style: no provenance, no crash


def test_provenance_is_the_style_row_of_sources(tmp_path: Path) -> None:
    sources = tmp_path / "SOURCES.md"
    assert provenance("starry_night.jpg", sources) is None  # no SOURCES.md yet
    sources.write_text(
        "| file | repository | commit | path in repository | processing | artwork / rights |\n"
        "|---|---|---|---|---|---|\n"
        "| starry_night.jpg | jc/neural-style | 07c4b8299f | `inputs/starry_night.jpg` | copied | van Gogh, PD |\n"
    )
    line = "van Gogh, PD; from jc/neural-style `inputs/starry_night.jpg` @ 07c4b82, copied"
    assert provenance("starry_night.jpg", sources) == line and provenance("candy.jpg", sources) is None


def test_card_and_sample_are_written(shipped_tiny: tuple[Path, Path]) -> None:
    docs = shipped_tiny[1]
    card = (docs / "tiny_style.md").read_text()
    for fact in ("coffee", "small", FACTS["data"], FACTS["how"], "a test CPU", "another CPU", "48 px", "64 px"):
        assert fact in card, fact
    assert "12 (24 images seen)" in card and "## Fast vs iterative" in card and "| 64 px | 2 |" in card
    assert "| hardware | a test CPU + another CPU |" in card  # each stage's machine, in stage order
    assert "| the content photo |" in card  # the compare report's start, as `nst compare` recorded it
    assert "tiny_style.jpg" in card and Image.open(docs / "tiny_style.jpg").width > 64


def _match_file(path: Path, **row: object) -> Path:
    """A `benchmarks/match_iterations.py --json` file of one row (a noise figure of tiny_style at 64 px)."""
    base = {"model": "tiny_style", "size": 64, "start": "noise", "iterations": {"chelsea": 7, "coffee": None}}
    path.write_text(json.dumps({"machine": "a test CPU", "rows": [base | {"median": ">9", "max_steps": 9} | row]}))
    return path


def test_figures_measured_later_reach_the_file_and_its_card(shipped_tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """tools/figures.py: a noise figure joins the shipped photo-start one; weights and other metadata untouched."""
    import onnx

    from tools.figures import main as figures

    model = tmp_path / "tiny_style.onnx"
    model.write_bytes((shipped_tiny[0] / model.name).read_bytes())
    before = onnx.load(str(model))
    match, docs = _match_file(tmp_path / "match.json"), tmp_path / "docs"
    assert figures([str(model), "--match", str(match), "--docs", str(docs)]) == 0
    after = shipped.ShippedModel(model.stem, model, shipped.read_metadata(model))
    assert after.iterations_to_match(64, "noise") == ">9" and after.iterations_to_match(64) != "-"
    assert after.compare["64"] == json.loads(shipped.read_metadata(shipped_tiny[0] / model.name)["nst.compare"])["64"]
    assert onnx.load(str(model)).graph == before.graph  # the network itself untouched
    kept = {p.key: p.value for p in before.metadata_props if p.key != shipped.COMPARE_KEY}
    assert {k: after.metadata[k] for k in kept} == kept
    card = (docs / "tiny_style.md").read_text()
    assert "| 64 px | 2 | chelsea 7, coffee >9 | >9 | a test CPU | uniform noise" in card
    assert "| 64 px | 2 |" in card.split("uniform noise")[0]  # the photo-start row first, still there
    assert "skimage:chelsea" in card  # the sample photos the file recorded when shipped
    assert Image.open(docs / "tiny_style.jpg").size == Image.open(shipped_tiny[1] / "tiny_style.jpg").size


@pytest.mark.parametrize(
    ("row", "needle"),
    [({"model": "other_style"}, "no figures for 'tiny_style'"), ({"size": "big"}, "not a match_iterations.py")],
)
def test_figures_tool_fails_in_one_line_writing_nothing(
    shipped_tiny: tuple[Path, Path], tmp_path: Path, row: dict, needle: str
) -> None:
    model = tmp_path / "tiny_style.onnx"
    model.write_bytes((shipped_tiny[0] / model.name).read_bytes())
    match = _match_file(tmp_path / "match.json", **row)
    args = [sys.executable, str(REPO / "tools" / "figures.py"), str(model), "--match", str(match)]
    proc = subprocess.run([*args, "--docs", str(tmp_path / "docs")], **RUN)
    assert proc.returncode == 2 and proc.stdout == "" and not (tmp_path / "docs").exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tools/figures.py: error: ") and needle in lines[0], proc.stderr
    assert model.read_bytes() == (shipped_tiny[0] / model.name).read_bytes()


def test_bad_facts_and_reports_are_one_line(tiny_run: Path, report_64: Path, tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("stages: [{steps: 3, batch: 4}]\n")
    with pytest.raises(NSTError, match="unknown key 'batch'"):
        ship(tiny_run, "x", models=tmp_path / "m", docs=tmp_path / "d", facts_file=facts)
    with pytest.raises(NSTError, match="lowercase"):
        ship(tiny_run, "Bad Name", models=tmp_path / "m", docs=tmp_path / "d")
    report = json.loads((report_64 / "report.json").read_text())
    report["metric"]["source"] = "nst optimize defaults"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "report.json").write_text(json.dumps(report))
    with pytest.raises(NSTError, match="--metric model"):
        ship(tiny_run, "x", models=tmp_path / "m", docs=tmp_path / "d", compare=[tmp_path / "r"])
    assert not (tmp_path / "m").exists()  # nothing shipped


# ---------------------------------------------------------------------------------------------- by name


def test_nst_models_lists_the_facts(models_env: Path, capsys) -> None:
    code, out, _ = run_cli(["models", "--json"], capsys)
    (entry,) = json.loads(out)
    assert code == 0 and entry["name"] == "tiny_style" and entry["style"] == "coffee"
    assert (entry["variant"], entry["steps"], entry["images_seen"]) == ("small", 12, 24)
    assert entry["size_bytes"] == (models_env / "tiny_style.onnx").stat().st_size and entry["data"] == FACTS["data"]
    code, out, _ = run_cli(["models"], capsys)
    header, row = out.splitlines()[:2]
    assert "noise@256" in header and "photo@512" in header
    assert row.split()[:5] == ["tiny_style", "coffee", "small", "12", "24"]
    assert row.split()[-4:] == ["-"] * 4  # measured at 64 px only


def test_stylize_and_info_by_name(models_env: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    code, _, err = run_cli(["stylize", str(photo(tmp_path, size=40)), "--model", "tiny_style", "-o", str(out)], capsys)
    assert code == 0, err
    assert Image.open(out).size == Image.open(photo(tmp_path, size=40)).size
    code, out_text, _ = run_cli(["stylize", "--info", "--json", "--model", "tiny_style"], capsys)
    assert code == 0 and json.loads(out_text)["metadata"][shipped.NAME_KEY] == "tiny_style"


def test_a_path_wins_over_a_name(models_env: Path, tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny_style").write_bytes(tiny_onnx.read_bytes())  # a file in the working folder named like the model
    assert shipped.resolve_model("tiny_style") == "tiny_style"
    assert Stylizer(shipped.resolve_model("tiny_style")).metadata["nst.style"] == "tiny-test"


@pytest.mark.parametrize("listed", [True, False])
def test_an_unknown_name_lists_the_shipped_ones(listed: bool, models_env: Path, tmp_path: Path, monkeypatch, capsys):
    if not listed:
        monkeypatch.setenv(shipped.MODELS_ENV, str(tmp_path / "none"))
    code, out, err = run_cli(
        ["stylize", str(photo(tmp_path)), "--model", "van_gogh", "-o", str(tmp_path / "o.png")], capsys
    )
    assert code == 2 and out == ""
    one_error_line(err, "van_gogh", "tiny_style" if listed else "no pretrained models ship")


def test_app_lists_shipped_models_by_name(models_env: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    from infer.app.catalogue import ModelCatalogue

    (tmp_path / "mine.onnx").write_bytes(tiny_onnx.read_bytes())
    catalogue = ModelCatalogue(tmp_path)
    assert catalogue.choices() == ["mine.onnx", "tiny_style"]
    assert catalogue.entry("tiny_style").path == models_env / "tiny_style.onnx"


def test_nst_models_imports_no_torch_or_onnxruntime(models_env: Path) -> None:
    code = "import sys; from nst_core.cli import main\nmain(['models'])\n"
    code += "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------------------------- the real folder


@pytest.mark.parametrize("model", shipped.model_files(shipped.PACKAGE_MODELS), ids=lambda p: p.stem)
def test_each_shipped_model_stylizes_and_has_its_card(model: Path) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    out = np.asarray(Stylizer(model, provider="cpu").stylize(image))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8 and out.std() > 0
    meta = shipped.read_metadata(model)
    assert meta[shipped.NAME_KEY] == model.stem and shipped.TRAINING_KEY in meta
    assert (REPO / "docs" / "models" / f"{model.stem}.md").is_file()
    assert (REPO / "docs" / "models" / f"{model.stem}.jpg").is_file()


def test_four_styles_ship_each_a_built_in_painting_with_its_figures() -> None:
    """Issue 15's floor: at least four shipped styles, each a built-in painting, each with compare figures."""
    from nst_core.builtin_styles import BUILTIN_STYLES

    files = shipped.model_files(shipped.PACKAGE_MODELS)
    assert len(files) >= 4
    for model in files:
        meta = shipped.read_metadata(model)
        styles = json.loads(meta.get("nst.styles", "null")) or [meta["nst.style"]]
        assert set(styles) <= set(BUILTIN_STYLES), model
        teachers = json.loads(meta["nst.config"]).get("teacher")
        if not teachers:
            assert {"256", "512"} <= set(json.loads(meta["nst.compare"])), model
            continue
        for style, teacher in zip(styles, teachers if isinstance(teachers, list) else [teachers], strict=True):
            # a distilled network: each teacher ships, with the figures, and paints the same style
            source = shipped.PACKAGE_MODELS / f"{teacher}.onnx"
            assert shipped.read_metadata(source)["nst.style"] == style, source
            assert {"256", "512"} <= set(json.loads(shipped.read_metadata(source)["nst.compare"])), source


def test_each_shipped_style_image_is_found_and_linked_from_a_card_anywhere(tmp_path: Path) -> None:
    """``nst.style_file`` resolves from the installed packages, and a card written into any docs folder links it."""
    from nst_core.builtin_styles import builtin_style_path
    from tools.ship import card_markdown

    for model in shipped.shipped_models(shipped.PACKAGE_MODELS):
        docs = tmp_path / "a" / "b"
        row = re.search(r"\| style images? \| (.*) \|", card_markdown(model, {}, ["x"], docs))
        links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", row.group(1)) if row else []
        paintings = [builtin_style_path(s) for s in model.styles] if model.styles else [model.style_image]
        assert all(p is not None and p.is_file() for p in paintings), model.name
        assert [(docs / link).resolve() for link in links] == [p.resolve() for p in paintings], model.name


def test_the_release_tool_fails_in_one_line(tmp_path: Path) -> None:
    args = [sys.executable, str(REPO / "tools" / "ship.py"), str(tmp_path / "nope"), "--name", "x"]
    proc = subprocess.run([*args, "--models", str(tmp_path / "m"), "--docs", str(tmp_path / "d")], **RUN)
    assert proc.returncode == 2 and proc.stdout == "" and not (tmp_path / "m").exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tools/ship.py: error: ") and "nope" in lines[0], proc.stderr


INT8_COPIES = sorted((REPO / "infer" / "models" / shipped.INT8_DIR).glob("*.onnx"))


@pytest.mark.parametrize("copy", INT8_COPIES, ids=lambda p: p.stem)
def test_each_int8_copy_is_its_model_quantized(copy: Path) -> None:
    """Same metadata as the shipped fp32 file (but nst.precision), and the same picture within a few levels
    (measured at 512 px: mean 1.4-3.8 of 255; the iterations to match from noise within one of fp32's)."""
    fp32 = copy.parents[1] / copy.name
    assert fp32.is_file()
    meta, own = shipped.read_metadata(copy), shipped.read_metadata(fp32)
    assert (meta.pop("nst.precision"), own.pop("nst.precision")) == ("int8", "fp32") and meta == own
    content = np.asarray(Image.open(skimage_photo("astronaut.png")).convert("RGB").resize((128, 128)))
    a = np.asarray(Stylizer(fp32, precision="fp32").stylize(content), np.float32)
    b = np.asarray(Stylizer(copy, precision="fp32").stylize(content), np.float32)
    assert 0 < np.abs(a - b).mean() < 8.0


def test_the_cpu_runs_a_shipped_int8_copy_unless_told_fp32(capsys) -> None:
    name = INT8_COPIES[0].stem
    assert Stylizer(name).model_path == INT8_COPIES[0]  # by name, on the CPU
    assert Stylizer(shipped.find_shipped(name)).model_path == INT8_COPIES[0]  # the shipped file's path too
    assert Stylizer(name, precision="fp32").model_path == shipped.find_shipped(name)
    plain = next(p for p in shipped.model_files() if not (p.parent / shipped.INT8_DIR / p.name).exists())
    assert Stylizer(plain.stem).model_path == plain  # no copy ships: the file itself
    for extra, expected in (([], INT8_COPIES[0]), (["--precision", "fp32"], shipped.find_shipped(name))):
        code, out, err = run_cli(["stylize", "--info", "--json", "--model", name, *extra], capsys)
        assert code == 0, err
        assert Path(json.loads(out)["model"]) == expected
    with pytest.raises(NSTError, match="precision"):
        Stylizer(name, precision="int4")


#: Development paths and logistics no user has: they never appear in what users read.
DEVELOPMENT_WORDS = ("../shared", "shared/data", "photos_large/SOURCES", "to travel to the GPU", "lent to this project")


def test_user_facing_text_names_no_development_path(capsys) -> None:
    """The README, the docs, the cards, the configs, every command's --help and every shipped model's metadata
    describe the product, not how its development machines were used."""
    from nst_core.cli import main
    from nst_core.cli.command import commands

    texts = {str(p): p.read_text(encoding="utf-8") for p in [REPO / "README.md", *(REPO / "docs").glob("**/*.md")]}
    texts |= {str(p): p.read_text(encoding="utf-8") for p in (REPO / "configs").glob("*.yaml")}
    for command in commands():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        texts[f"nst {command} --help"] = capsys.readouterr().out
    for model in [*shipped.model_files(shipped.PACKAGE_MODELS), *INT8_COPIES]:
        texts[str(model)] = json.dumps(shipped.read_metadata(model))
    found = [(where, word) for where, text in texts.items() for word in DEVELOPMENT_WORDS if word in text]
    assert not found, found


def test_a_shipped_model_becomes_a_hub_ready_folder(tmp_path: Path) -> None:
    """tools/hub.py: the ONNX file, its sample, its painting and a README.md whose YAML front matter is the Hub's
    model-card metadata, over the card; every picture the card shows is in the folder."""
    import yaml

    from tools.hub import write_folder

    model = shipped.ShippedModel("udnie_fast", shipped.PACKAGE_MODELS / "udnie_fast.onnx", {})
    model = shipped.ShippedModel(model.name, model.path, shipped.read_metadata(model.path))
    folder = write_folder(model, tmp_path / "hub")
    text = (folder / "README.md").read_text()
    head, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    meta = yaml.safe_load(head)
    assert meta["pipeline_tag"] == "image-to-image" and meta["library_name"] == "onnx" and meta["license"] == "mit"
    assert {"style-transfer", "onnx"} <= set(meta["tags"])
    assert meta["model-index"][0]["results"][0]["metrics"]  # the iterations to match
    assert (folder / "udnie_fast.onnx").read_bytes() == model.path.read_bytes()
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", body):
        assert (folder / link).is_file(), link
    assert sorted(p.name for p in tmp_path.joinpath("hub").iterdir()) == ["udnie_fast"]  # no temporary left
