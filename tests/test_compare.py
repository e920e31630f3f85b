"""`nst compare`: a tiny freshly trained model against the optimizer, on CPU at 48 px."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import pytest
from PIL import Image

from infer.compare import FILES, compare, find_reach, grid_size, parse_steps
from nst_core.cli import main
from nst_core.errors import NSTError
from tests.conftest import skimage_photo
from train.config import build_config
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
SIZE, TILE, STEPS = 48, 64, (5, 10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """network.safetensors of a 10-step, 32 px run of the small network on four real photos (style: coffee)."""
    root = tmp_path_factory.mktemp("compare_train")
    photos = root / "photos"
    photos.mkdir()
    for name in PHOTOS:
        img = Image.open(skimage_photo(name)).convert("RGB")
        img.thumbnail((64, 64))
        img.save(photos / f"{Path(name).stem}.jpg", quality=90)
    cfg = build_config(
        dict(
            style=str(skimage_photo("coffee.png")),
            data=str(photos),
            out=str(root / "run"),
            image_size=32,
            batch_size=2,
            variant="small",
            num_workers=0,
            max_steps=10,
            checkpoint_every=100,
            sample_every=100,
            num_samples=2,
            log_every=1,
            report_to="none",
        )
    )
    result = run_training(cfg)
    assert result.network is not None and result.network.is_file()
    return result.network


@pytest.fixture(scope="module")
def onnx_model(trained: Path, tmp_path_factory) -> Path:
    from infer.export import export_onnx

    out = tmp_path_factory.mktemp("compare_onnx") / "coffee.onnx"
    export_onnx(trained, out, exporter="torchscript")  # ~1 s instead of ~20 s for dynamo; the graph is the same net
    return out


@pytest.fixture(scope="module")
def report_run(onnx_model: Path, tmp_path_factory) -> tuple[Path, dict]:
    """One `nst compare --json` run: two photos, steps 5 and 10, 48 px; returns (report dir, printed summary)."""
    out = tmp_path_factory.mktemp("compare_out") / "report"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            [
                "compare",
                str(skimage_photo("astronaut.png")),
                "skimage:chelsea",
                "--style",
                "skimage:coffee",
                "--model",
                str(onnx_model),
                "-o",
                str(out),
                "--steps",
                ",".join(map(str, STEPS)),
                "--size",
                str(SIZE),
                "--tile",
                str(TILE),
                "--repeats",
                "2",
                "--json",
                "-q",
            ]
        )
    assert code == 0
    return out, json.loads(stdout.getvalue())


def test_writes_every_file_and_the_grid_has_one_row_per_image(report_run) -> None:
    out, _ = report_run
    for name in FILES.values():
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.tmp*"))  # atomic writes: no temporaries left
    grid = Image.open(out / "grid.png")
    assert grid.size == grid_size(rows=2, cols=3 + len(STEPS), tile=TILE)  # content, style, fast, 5, 10
    plot = Image.open(out / "loss_vs_time.png")
    assert plot.format == "PNG" and min(plot.size) > 200
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "01_astronaut_fast.png",
        "01_astronaut_iter00005.png",
        "01_astronaut_iter00010.png",
        "02_chelsea_fast.png",
        "02_chelsea_iter00005.png",
        "02_chelsea_iter00010.png",
    ]
    assert Image.open(out / "images" / "02_chelsea_fast.png").size == (48, 32)  # chelsea is 451x300


def test_report_json_scores_times_and_summary(report_run) -> None:
    out, printed = report_run
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == list(STEPS) and report["size"] == SIZE
    assert report["metric"]["tv_weight"] == 0 and report["metric"]["content_layers"] == ["relu4_2"]
    assert {"cpu", "torch", "onnxruntime", "device"} <= set(report["machine"])
    assert report["load_seconds"]["fast_model"] > 0 and report["load_seconds"]["vgg"] > 0
    assert report["warnings"] == []  # the model was trained on coffee, compared with coffee
    assert report["model_info"]["style"] == "coffee"
    assert report["metric"]["source"] == "nst optimize defaults"
    assert report["model_info"]["trained_with"]["content_layers"] == ["relu2_2"]  # from the ONNX nst.config
    assert printed == {"report_dir": str(out), **report["summary"]}
    assert [im["name"] for im in report["images"]] == ["astronaut", "chelsea"]
    for im in report["images"]:
        fast, its = im["fast"], im["iterative"]
        assert fast["steps"] is None and fast["seconds"] > 0 and im["warmup_seconds"]["fast"] > 0
        assert [r["steps"] for r in its] == list(STEPS)
        for r in (fast, *its):
            loss = r["loss"]
            assert loss["total"] == pytest.approx(loss["content"] + loss["style"], rel=1e-5)
            assert (out / r["file"]).is_file()
        assert its[1]["loss"]["total"] <= its[0]["loss"]["total"]  # more steps, lower loss
        assert 0 < its[0]["seconds"] < its[1]["seconds"]
        rows = im["curve"]["rows"]
        assert [r[0] for r in rows] == list(range(1, STEPS[-1] + 1))
        assert all(a[1] < b[1] for a, b in itertools.pairwise(rows))  # the clock only moves forward
        for r in its:  # the snapshots are the curve's points at those steps
            row = rows[r["steps"] - 1]
            assert (r["seconds"], r["loss"]["total"]) == (pytest.approx(row[1], abs=1e-6), row[2])


def test_reach_answer_matches_the_recorded_numbers(report_run) -> None:
    out, printed = report_run
    report = json.loads((out / "report.json").read_text())
    for im, short in zip(report["images"], printed["per_image"]):
        reach, rows, fast = im["reach"], im["curve"]["rows"], im["fast"]
        assert reach["fast_loss"] == fast["loss"]["total"] and reach["fast_seconds"] == fast["seconds"]
        first = next((r for r in rows if r[2] <= fast["loss"]["total"]), None)
        if first is None:
            assert not reach["reached"] and reach["iterations"] is None and reach["speedup"] is None
            assert "does not reach" in reach["text"]
        else:
            assert reach["reached"] and reach["iterations"] == first[0]
            assert reach["seconds"] == pytest.approx(first[1], abs=1e-6)
            assert reach["speedup"] == pytest.approx(first[1] / fast["seconds"], rel=1e-3)
            assert all(r[2] > fast["loss"]["total"] for r in rows[: first[0] - 1])
            assert f"after {first[0]} iteration" in reach["text"]
        assert short["iterations"] == reach["iterations"]
    md = (out / "report.md").read_text()
    assert "| image | method | steps | seconds |" in md and "| chelsea | iterative | 10 |" in md
    assert report["summary"]["answer"] in md and report["machine"]["cpu"] in md
    assert "`--metric model`" in md  # the note that the model was trained with another loss


def test_python_api_with_a_pytorch_network_and_a_foreign_style(trained: Path) -> None:
    """A .safetensors network runs through PyTorch; a style it was not trained on is allowed, with a warning;
    ``weights="model"`` scores with the loss the network was trained with."""
    rep = compare(
        [skimage_photo("astronaut.png")],
        "skimage:rocket",
        trained,
        steps="3",
        size=32,
        repeats=1,
        weights="model",
        progress=False,
    )
    assert rep.model_info["provider"] == "torch:cpu"
    assert rep.metric["content_layers"] == ["relu2_2"] and rep.metric["style_layers"][-1] == "relu4_3"
    assert len(rep.warnings) == 1 and "'coffee'" in rep.warnings[0] and "'rocket'" in rep.warnings[0]
    (im,) = rep.images
    assert im.size == (32, 32) and [r.steps for r in im.iterative] == [3] and len(im.curve) == 3
    assert im.iterative[0].image.size == im.fast.image.size == (32, 32)


def test_parse_steps_and_reach_edge_cases() -> None:
    assert parse_steps("100, 50,50") == [50, 100] and parse_steps([3, 1]) == [1, 3]
    for bad in ("", "10,x", "0", "5,,6", "-3", "1.5"):
        with pytest.raises(NSTError, match="step list"):
            parse_steps(bad)
    curve = [(1, 0.1, 9.0, 9.0), (2, 0.2, 5.0, 5.0), (3, 0.3, 4.0, 4.0)]
    hit = find_reach(curve, fast_loss=5.0, fast_seconds=0.01, max_steps=3)
    assert (hit.iterations, hit.seconds, hit.speedup) == (2, 0.2, pytest.approx(20.0))
    miss = find_reach(curve, fast_loss=1.0, fast_seconds=0.01, max_steps=3)
    assert not miss.reached and miss.speedup is None and "does not reach" in miss.text()
    assert "within 3 iterations" in miss.text() and "more than 30x faster" in miss.text()


@pytest.mark.parametrize("case", ["missing_model", "bad_steps", "zero_steps", "unreadable_image", "missing_image"])
def test_bad_input_is_one_line_and_exit_2(
    case: str, tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    content, model, steps = "skimage:astronaut", str(trained), "5"
    if case == "missing_model":
        model = str(tmp_path / "nope.onnx")
    elif case == "bad_steps":
        steps = "10,x"
    elif case == "zero_steps":
        steps = "0"
    elif case == "unreadable_image":
        content = str(junk)
    else:
        content = str(tmp_path / "missing.jpg")
    out = tmp_path / "report"
    argv = [
        "compare",
        content,
        "--style",
        "skimage:coffee",
        "--model",
        model,
        "-o",
        str(out),
        "--steps",
        steps,
        "--size",
        "32",
        "-q",
    ]
    if "steps" in case:  # rejected by the argument parser
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    else:
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("nst compare: error:")
    expected = {
        "missing_model": "nope.onnx",
        "bad_steps": "'x'",
        "zero_steps": "positive",
        "unreadable_image": "junk.png",
        "missing_image": "missing.jpg",
    }[case]
    assert expected in err
    assert not out.exists()
