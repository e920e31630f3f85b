"""The argparse pieces every subcommand shares: number types, the help formatter, option groups.

One meaning per option name across `nst`'s subcommands: ``-o/--output`` is where results go,
``--device`` the PyTorch device, ``--vgg-weights`` the loss network's weights, ``--json`` the
machine-readable result on stdout, ``-q`` silence on stderr. Nothing here imports torch, so
``nst --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from nst_core.losses.weights import LossWeights

T = TypeVar("T", int, float)

DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_MAX_PIXELS = 178_956_970  # = nst_core.image_io.DEFAULT_MAX_PIXELS (Pillow's limit), kept here without PIL
VGG_WEIGHTS_HELP = "caffe (original VGG19, offline), torchvision (IMAGENET1K_V1, downloaded), or a state-dict path"


# ------------------------------------------------------------------------------------------------ value types


def _bound_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}"


def number(
    kind: type[T] = float,  # type: ignore[assignment]
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], T]:
    """An argparse type: an int or float within the given bounds, with one-line errors."""
    noun = "an integer" if kind is int else "a number"
    bounds = _bound_text(low, high, low_open, high_open) if (low, high) != (None, None) else ""

    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}{' ' + bounds if bounds else ''}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid <name> value" messages
    parse.bounds = bounds  # type: ignore[attr-defined]  # shown by HelpFormatter
    return parse


positive_int = number(int, 0, low_open=True)
nonneg_int = number(int, 0)
positive_float = number(float, 0, low_open=True)
nonneg_float = number(float, 0)
unit_float = number(float, 0, 1)


SECONDS_PER = {"s": 1, "m": 60, "h": 3600}


def seconds(text: str) -> float:
    """``90``, ``90.5``, ``90s``, ``30m``, ``2h`` -> seconds (ValueError otherwise): a wall-clock limit either way."""
    text = text.strip()
    unit = SECONDS_PER.get(text[-1:].lower())
    return float(text[:-1] if unit else text) * (unit or 1)


def duration(text: str) -> float:
    """argparse type: a positive duration (see `seconds`)."""
    try:
        value = seconds(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected seconds > 0 (90, 90s, 30m, 2h), got {text!r}")
    return value


def name_list(text: str) -> list[str]:
    """argparse type: comma-separated names (e.g. relu1_1,relu2_1)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def list_of(item: Callable[[str], T], count: int | None = None) -> Callable[[str], list[T]]:
    """argparse type: comma-separated values each parsed by ``item`` (exactly ``count`` of them if given)."""

    def parse(text: str) -> list[T]:
        values = [item(t) for t in name_list(text)]
        if count is not None and len(values) != count:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated values, got {text!r}")
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
        return values

    return parse


# ------------------------------------------------------------------------------------------------ help


def show_default(value: Any) -> str:
    """A default as a user types it: lists comma-joined, booleans on/off."""
    if isinstance(value, list | tuple):
        return ",".join(show_default(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's range and default the way it is typed (no default for required options, flags, None).

    Descriptions and the examples epilog keep their line breaks.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        bounds = getattr(action.type, "bounds", "")
        if bounds and bounds not in text:
            head, sep, tail = text.partition(" (default:")  # the range goes before a default written by hand
            text = f"{head}; {bounds}{sep}{tail}"
        no_default = (
            action.required
            or not action.option_strings
            or action.default in (None, argparse.SUPPRESS)
            or isinstance(action.default, bool)
            or action.nargs == 0
            or "default:" in text
        )
        return text if no_default else f"{text} (default: {show_default(action.default)})"


def add_command(
    subparsers: argparse._SubParsersAction, name: str, help: str, description: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """A subcommand parser whose --help shows defaults and ends with the README's examples (the first of them
    also in `nst --help`)."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    p = subparsers.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter)
    p.examples = list(examples)
    return p


# ------------------------------------------------------------------------------------------------ option groups


def add_output_option(p: argparse.ArgumentParser, help: str, metavar: str = "OUT", required: bool = True) -> None:
    p.add_argument("-o", "--output", required=required, metavar=metavar, help=help)


def add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto", help="PyTorch device; auto: cuda, then mps, then cpu")


def add_vgg_option(p: argparse.ArgumentParser, default: Any = "caffe") -> None:
    p.add_argument("--vgg-weights", default=default, metavar="WEIGHTS", help=VGG_WEIGHTS_HELP)


def add_report_options(p: argparse.ArgumentParser, json_help: str) -> None:
    """--json (results on stdout), -q (nothing on stderr but errors) and -v (debug messages too)."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or messages on stderr, only errors")
    p.add_argument("--verbose", "-v", action="count", default=0, help="more messages on stderr (debug details)")


def add_max_pixels_option(p: argparse.ArgumentParser) -> None:
    """--max-pixels: the largest input image accepted (the default is Pillow's decompression-bomb limit)."""
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="largest input image accepted, in pixels (guards against decompression bombs)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars go to stderr unless -q, or --json with stderr redirected (a script is reading)."""
    return not (args.quiet or (args.json and not sys.stderr.isatty()))


#: (flag, LossWeights field, argparse type, help)
LOSS_OPTIONS = (
    ("--content-weight", "content", nonneg_float, "weight of the content loss"),
    ("--style-weight", "style", nonneg_float, "weight of the style loss"),
    ("--tv-weight", "tv", nonneg_float, "weight of the total-variation loss (smoothness)"),
    ("--content-layers", "content_layers", name_list, "comma-separated VGG layers of the content loss"),
    ("--style-layers", "style_layers", name_list, "comma-separated VGG layers of the style loss"),
    (
        "--style-layer-weights",
        "style_layer_weights",
        list_of(nonneg_float),
        "comma-separated weights, one per style layer (default: 1 each)",
    ),
)


def add_loss_options(
    p: argparse.ArgumentParser, defaults: LossWeights, *, only_given: bool = False, title: str = "loss"
) -> None:
    """The loss weights and layers as flags; with ``only_given`` an absent flag leaves the config alone."""
    group = p.add_argument_group(title)
    for flag, name, kind, text in LOSS_OPTIONS:
        default = getattr(defaults, name)
        if only_given:
            shown = "" if default is None else f" (default: {show_default(default)})"
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=text + shown)
        else:
            group.add_argument(flag, type=kind, default=default, help=text)


def loss_from_args(args: argparse.Namespace, base: LossWeights) -> LossWeights:
    """``base`` with the loss flags found on ``args`` (absent ones, under ``only_given``, keep base's)."""
    given = {}
    for flag, name, _, _ in LOSS_OPTIONS:
        dest = flag[2:].replace("-", "_")
        if hasattr(args, dest):
            given[name] = getattr(args, dest)
    return dataclasses.replace(base, **given)
