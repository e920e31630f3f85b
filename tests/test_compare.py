"""`nst compare`: a tiny freshly trained model against the optimizer, on CPU at 48 px."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from infer.compare.cli import config_from_args
from infer.compare.config import MODEL_METRIC, CompareConfig, parse_steps
from infer.compare.model import FastModel, OnnxModel, TorchModel, load_fast_model
from infer.compare.report import grid_size
from infer.compare.results import FILES, find_reach
from infer.compare.run import Metric, Stopped, compare, metric_spec, write_report
from nst_core.cli import build_parser, main
from nst_core.errors import NSTError
from nst_core.losses.weights import LossWeights
from nst_core.machine import describe
from tests.helpers import one_error_line, run_cli, skimage_photo, tiny_train_config
from tests.test_files import dead_pid
from train.trainer import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
SIZE, THUMB, STEPS = 48, 64, (5, 10)


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
    cfg = tiny_train_config(root / "run", photos, skimage_photo("coffee.png"), image_size=32, max_steps=10)
    result = run_training(cfg)
    assert result.network is not None and result.network.is_file()
    return result.network


@pytest.fixture(scope="module")
def onnx_model(trained: Path, tmp_path_factory) -> Path:
    from infer.export.exporter import export_onnx

    out = tmp_path_factory.mktemp("compare_onnx") / "coffee.onnx"
    export_onnx(trained, out, exporter="torchscript")  # ~1 s instead of ~20 s for dynamo; the graph is the same net
    return out


@pytest.fixture(scope="module")
def report_run(onnx_model: Path, tmp_path_factory) -> tuple[Path, dict]:
    """One `nst compare --json` run: two photos, steps 5 and 10, 48 px; returns (report dir, printed summary).

    The folder holds temporaries a killed comparison left (their writer's pid is dead): the run removes them."""
    out = tmp_path_factory.mktemp("compare_out") / "report"
    (out / "images").mkdir(parents=True)
    pid = dead_pid()
    (out / f".notes.md.{pid}.deadbeef.tmp.md").write_text("orphan")
    (out / "images" / f".01_old_fast.png.{pid}.deadbeef.tmp.png").write_bytes(b"orphan")
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
                "--thumb-size",
                str(THUMB),
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
    assert not list(out.rglob("*.tmp*"))  # atomic writes: no temporaries left, and a killed run's removed
    grid = Image.open(out / "grid.png")
    assert grid.size == grid_size(rows=2, cols=3 + len(STEPS), thumb_size=THUMB)  # content, style, fast, 5, 10
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
    assert report["metric"]["loss"] == LossWeights().to_dict()  # the nst optimize defaults, TV 0
    assert {"cpu", "torch", "onnxruntime", "device", "load"} <= set(report["machine"])
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
    assert report["summary"]["answer"] in md and f"Machine: {describe(report['machine'])}." in md
    assert "`--metric model`" in md  # the note that the model was trained with another loss


def test_python_api_with_a_pytorch_network_and_a_foreign_style(trained: Path, tmp_path: Path) -> None:
    """A .safetensors network runs through PyTorch; a style it was not trained on is allowed, with a warning;
    ``weights="model"`` scores with the loss the network was trained with."""
    rep = compare(
        [skimage_photo("astronaut.png")],
        "skimage:rocket",
        trained,
        steps="3",
        size=32,
        repeats=1,
        metric="model",
        progress=False,
    )
    assert rep.model_info["provider"] == "torch:cpu"
    assert rep.metric.source == "the model's training loss" and rep.metric.loss.tv == 0
    assert rep.metric.loss.content_layers == ("relu2_2",) and rep.metric.loss.style_layers[-1] == "relu4_3"
    assert not rep.metric.differs_from_training
    assert len(rep.warnings) == 1 and "'coffee'" in rep.warnings[0] and "'rocket'" in rep.warnings[0]
    (im,) = rep.images
    assert im.size == (32, 32) and [r.steps for r in im.iterative] == [3] and len(im.curve) == 3
    assert im.iterative[0].image.size == im.fast.image.size == (32, 32)
    written = write_report(rep, tmp_path / "report", thumb_size=40)
    assert Image.open(written["grid"]).size == grid_size(rows=1, cols=4, thumb_size=40)
    saved = json.loads(written["json"].read_text())
    assert saved["metric"]["loss"] == rep.metric.loss.to_dict()
    assert saved["model_info"]["trained_with"] == rep.metric.trained_with.to_dict()


def test_the_optimizer_s_start_is_recorded_and_changes_the_baseline(onnx_model: Path, tmp_path: Path) -> None:
    """From noise (Johnson et al.'s protocol) the optimizer starts far above where it starts from the photo, and
    every place a figure is read says which start it used."""
    runs = {
        init: compare(
            [skimage_photo("astronaut.png")],
            "skimage:coffee",
            onnx_model,
            steps="3",
            size=32,
            repeats=1,
            init=init,
            progress=False,
        )
        for init in ("content", "noise")
    }
    first = {init: rep.images[0].curve[0][2] for init, rep in runs.items()}  # step 1 scores the starting image
    assert first["noise"] > 1.2 * first["content"]  # measured: 1.10e9 vs 7.17e8 (astronaut x coffee, 32 px)
    rep = runs["noise"]
    assert rep.start == "noise" and rep.summary()["start"] == "noise"
    assert rep.answer().startswith("Starting from uniform noise")
    assert runs["content"].answer().startswith("Starting from the content photo")
    written = write_report(rep, tmp_path / "report", thumb_size=40)
    assert json.loads(written["json"].read_text())["start"]["init"] == "noise"
    assert "starts from uniform noise in [0, 1)" in written["markdown"].read_text()


def test_should_stop_ends_the_run_within_one_step(onnx_model: Path) -> None:
    """The web app's Stop: once ``should_stop`` says yes, compare raises Stopped at that step, not 50 steps on."""
    asked: list[tuple[int, int]] = []

    def after_step_3(done: int, total: int) -> bool:
        asked.append((done, total))
        return done == 4  # the fast pass, then optimizer steps 1, 2, 3

    with pytest.raises(Stopped, match=r"stopped on request at optimizer step 3 of 50"):
        compare(
            [skimage_photo("astronaut.png")], "skimage:coffee", onnx_model, steps=[50], size=32, repeats=1,
            progress=False, should_stop=after_step_3,
        )  # fmt: skip
    assert asked == [(0, 51), (1, 51), (2, 51), (3, 51), (4, 51)]  # told how far the run is at every step
    with pytest.raises(Stopped, match="before astronaut"):
        compare([skimage_photo("astronaut.png")], "skimage:coffee", onnx_model, size=32, should_stop=lambda *_: True)


def test_style_target_keeps_the_shorter_side_vgg_needs() -> None:
    """A 2:3 style at --size 16 would be 11x16, too small for relu5_1 (16 px): it is taken larger instead."""
    metric = Metric(LossWeights(), "caffe", torch.device("cpu"))
    metric.set_style(Image.new("RGB", (40, 60), "orange"), 16)  # used to raise RuntimeError inside VGG
    assert metric.min_side == 16


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
        "zero_steps": "> 0",
        "unreadable_image": "junk.png",
        "missing_image": "missing.jpg",
    }[case]
    assert expected in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- model metadata


def test_the_metadata_keys_read_are_the_ones_the_writers_write(trained: Path, onnx_model: Path) -> None:
    """The style and training-config keys compare reads exist in a trained network and in its ONNX export."""
    for model, kind in ((trained, TorchModel), (onnx_model, OnnxModel)):
        net = load_fast_model(model, torch.device("cpu"))
        assert type(net) is kind
        assert {net.STYLE_KEY, net.CONFIG_KEY} <= set(net.metadata), (kind, sorted(net.metadata))
        assert net.style == "coffee"
        loss = net.training_loss()
        assert loss.content_layers == ("relu2_2",) and loss.style_layers[-1] == "relu4_3"


class _Meta(FastModel):
    STYLE_KEY, CONFIG_KEY = "style", "config"

    def __init__(self, config: dict | None) -> None:
        self.path = Path("model.safetensors")
        self.metadata = {} if config is None else {"config": json.dumps(config)}


def test_training_loss_from_the_loss_section_or_the_flat_keys_of_older_models() -> None:
    loss = {"content": 2.0, "style": 30.0, "tv": 1e-6, "content_layers": ["relu3_3"], "style_layers": ["relu1_2"]}
    new = _Meta({"lr": 1e-3, "loss": loss}).training_loss()
    assert new == LossWeights(**loss)
    old = _Meta(
        {"lr": 1e-3, "content_weight": 2.0, "style_weight": 30.0, "tv_weight": 1e-6}
        | {"content_layers": ["relu3_3"], "style_layers": ["relu1_2"]}
    ).training_loss()
    assert old == new
    for config in (None, {"lr": 1e-3}):
        with pytest.raises(NSTError, match="holds no training loss"):
            _Meta(config).training_loss()
    with pytest.raises(NSTError, match="unknown loss key 'gamma'"):
        _Meta({"loss": {"gamma": 1}}).training_loss()
    assert _Meta({"loss": loss}).style is None  # no style key: no name, not ""


def test_metric_spec_takes_the_loss_whole_and_drops_tv() -> None:
    trained = {"content": 2.0, "style": 30.0, "tv": 1e-6, "content_layers": ["relu3_3"], "style_layers": ["relu1_2"]}
    spec = metric_spec(CompareConfig(metric=MODEL_METRIC), _Meta({"loss": trained}))
    assert spec.source == "the model's training loss" and spec.loss == LossWeights(**{**trained, "tv": 0.0})
    assert spec.trained_with == LossWeights(**trained) and not spec.differs_from_training
    plain = metric_spec(CompareConfig(metric=LossWeights(tv=1.0, style_layer_weights=[1] * 5)), _Meta(None))
    assert (plain.source, plain.loss.tv, plain.trained_with) == ("nst optimize defaults", 0.0, None)
    custom = metric_spec(CompareConfig(metric=LossWeights(content=2.0)), _Meta({"loss": trained}))
    assert custom.source == "custom" and custom.differs_from_training
    with pytest.raises(NSTError, match="holds no training loss"):
        metric_spec(CompareConfig(metric=MODEL_METRIC), _Meta(None))
    with pytest.raises(NSTError, match="metric must be"):
        CompareConfig(metric="optimize")


# ---------------------------------------------------------------------------------------------- command line


def _args(*flags: str):
    return build_parser("compare").parse_args(["compare", "a.jpg", "-s", "b.jpg", "-m", "m.onnx", "-o", "r", *flags])


def test_flags_become_one_config() -> None:
    cfg = config_from_args(_args("--steps", "100,50,50", "--content-weight", "2", "--style-layer-weights", "1,2,3,4,5"))
    assert cfg.steps == [50, 100] and cfg.metric == LossWeights(content=2, style_layer_weights=(1, 2, 3, 4, 5))
    assert config_from_args(_args()).metric == CompareConfig().metric == LossWeights()
    assert config_from_args(_args("--metric", "model", "--content-weight", "2")).metric == MODEL_METRIC
    assert config_from_args(_args()).init == "content" and config_from_args(_args("--init", "noise")).init == "noise"
    assert _args("--thumb-size", "99").thumb_size == 99


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--tile", "64"], "unrecognized arguments: --tile"),  # the grid's thumbnails are --thumb-size
        (["--tv-weight", "1"], "unrecognized arguments: --tv-weight"),  # the metric is content + style
        (["--thumb-size", "0"], "must be > 0"),
        (["--steps", "10,x"], "'x'"),
        (["--content-weight", "inf"], "finite"),
        (["--style-weight", "nan"], "finite"),
        (["--style-layer-weights", "1,inf,1,1,1"], "finite"),
        (["--max-pixels", "0"], "> 0"),
        (["--init", "gauss"], "invalid choice: 'gauss'"),
    ],
)
def test_rejected_flags(flags: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "a.jpg", "-s", "b.jpg", "-m", "m.onnx", "-o", "r", *flags])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()  # every flag error is the command's own line
    assert line.startswith("nst compare: error: ") and needle in line


@pytest.mark.parametrize("case", ["file", "no_parent", "bad_layer", "bad_layer_weights"])
def test_output_folder_and_loss_checked_before_any_work(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad report folder or metric fails at once (the model is missing too: it is never reached)."""
    taken = tmp_path / "taken"
    taken.write_text("x")
    out = {"file": taken, "no_parent": tmp_path / "no" / "report"}.get(case, tmp_path / "report")
    flags = {"bad_layer": ["--content-layers", "relu9_9"], "bad_layer_weights": ["--style-layer-weights", "1,2"]}
    argv = ["compare", "skimage:astronaut", "-s", "skimage:coffee", "-m", str(tmp_path / "missing.onnx")]
    t0 = time.perf_counter()
    code, stdout, err = run_cli([*argv, "-o", str(out), *flags.get(case, [])], capsys)
    assert code == 2 and stdout == "" and time.perf_counter() - t0 < 5
    needle = {
        "file": "exists and is not a folder",
        "no_parent": "does not exist",
        "bad_layer": "relu9_9",
        "bad_layer_weights": "2 style layer weights for 5 style layers",
    }[case]
    one_error_line(err, needle)
    assert "missing.onnx" not in err and not (tmp_path / "report").exists()


def test_the_benchmark_s_stored_curves_give_the_optimizer_s_own_answer(trained: Path, tmp_path: Path) -> None:
    """benchmarks/match_iterations.py --curves: a stored optimizer curve gives the iterations a full comparison
    gives, and is what the answer is read from (spoilt, it changes the answer)."""
    import argparse
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "match_iterations.py"
    spec = importlib.util.spec_from_file_location("match_iterations", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    photo, style = skimage_photo("astronaut.png"), str(skimage_photo("coffee.png"))
    args = argparse.Namespace(max_steps=30, curves=tmp_path / "curves", reports=None)
    args.curves.mkdir()
    full = bench.measure(str(trained), style, [photo], 32, "noise", args)
    first = bench.measure_with_curves(str(trained), style, [photo], 32, "noise", args)
    again = bench.measure_with_curves(str(trained), style, [photo], 32, "noise", args)
    assert (first["curves_reused"], again["curves_reused"]) == (0, 1)
    assert full["iterations"] == first["iterations"] == again["iterations"]
    assert isinstance(first["iterations"]["astronaut"], int)  # reached within the cap: a spoilt curve changes it
    (stored,) = args.curves.glob("*.json")
    stored.write_text(json.dumps([[k, 0.0, 1e30, 1e30] for k in range(1, 31)]))  # never reaches the network
    assert bench.measure_with_curves(str(trained), style, [photo], 32, "noise", args)["iterations"] == {
        "astronaut": None
    }
