"""Maintainer tool: each shipped model as a folder ready to upload to the Hugging Face Hub.

For every model given, ``OUT/<name>/`` gets the ONNX file, its sample picture, its painting(s) and a ``README.md``:
the Hub's model-card metadata as YAML front matter (licences, tags, ``pipeline_tag: image-to-image``,
``library_name: onnx``, the training data, the optimizer iterations to match the network as metrics), then the card
`tools/ship.py` writes, read back from the file's own metadata. Every folder is written beside its final name and
renamed into place. Publishing is one command per folder (docs/publish.md):

    python tools/hub.py infer/models/*.onnx --out hub/
    hf upload OWNER/starry_night hub/starry_night .
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infer.models import shipped  # noqa: E402
from nst_core.cli import OneLineParser, exit_status  # noqa: E402
from nst_core.errors import NSTError  # noqa: E402
from nst_core.files import temporary_name  # noqa: E402
from nst_core.log import configure  # noqa: E402
from tools.ship import SAMPLE_PHOTOS, card_markdown, paintings  # noqa: E402

DOCS = ROOT / "docs" / "models"
#: The Hub's tags for every model; the variant and ``multi-style`` are added per model.
TAGS = ("style-transfer", "neural-style-transfer", "fast-neural-style", "onnx", "image-to-image")
LICENSE_NOTE = (
    "The weights are released under the MIT licence, as is nst. The paintings are in the public domain. The "
    "training photos are ImageNet samples, BSDS500 training images and other public photo collections, some of them "
    "for research or non-commercial use only: check their terms before commercial use."
)


def metrics(model: shipped.ShippedModel) -> list[dict[str, Any]]:
    """The iterations-to-match figures as model-index metrics (higher is better)."""
    out = []
    for _, c in sorted(model.compare.items()):
        start = "noise" if c.get("start") == "noise" else "content photo"
        out.append(
            {
                "type": "iterations_to_match",
                "name": f"L-BFGS iterations to match at {c['size']} px, started from {start}",
                "value": c["median"],
            }
        )
    return out


def front_matter(model: shipped.ShippedModel) -> dict[str, Any]:
    """The Hub's model-card metadata of ``model``."""
    variant = model.variant
    tags = [*TAGS, f"{variant}-network", *(["multi-style"] if model.styles else [])]
    meta: dict[str, Any] = {
        "license": "mit",
        "library_name": "onnx",
        "pipeline_tag": "image-to-image",
        "tags": tags,
    }
    figures = metrics(model)
    if figures:
        task = {"type": "image-to-image", "name": "style transfer"}
        data = {"type": "held-out photos", "name": "photos not used in training"}
        meta["model-index"] = [{"name": model.name, "results": [{"task": task, "dataset": data, "metrics": figures}]}]
    return meta


def readme(model: shipped.ShippedModel, folder: Path) -> str:
    """Front matter, then the card, its links pointing into ``folder``."""
    config = json.loads(model.metadata.get("nst.config", "{}"))
    photos = model.sample_photos or list(SAMPLE_PHOTOS)
    card = card_markdown(model, config, photos, folder, painting_link=lambda file: file.name)
    head = yaml.safe_dump(front_matter(model), sort_keys=False, allow_unicode=True)
    use = (
        f"\n## Use with nst\n\n```bash\npip install nst-toolkit\nnst stylize photo.jpg --model hf://OWNER/{model.name} "
        "-o out.png\n```\n\n"
        f"The file is `{model.path.name}`: float32 `image` (batch, 3, height, width), RGB in [0, 1], any size, in; the "
        "stylized image out; it runs on any ONNX runtime.\n\n## Licence\n\n" + LICENSE_NOTE + "\n"
    )
    return f"---\n{head}---\n\n{card}{use}"


def write_folder(model: shipped.ShippedModel, out: Path) -> Path:
    """``out/<name>/``: the model, its sample picture, its painting(s) and its README.md; renamed into place."""
    sample = DOCS / f"{model.name}.jpg"
    if not sample.is_file():
        raise NSTError(f"{sample}: the sample picture is missing (tools/ship.py or tools/figures.py writes it)")
    dest = out / model.name
    work = temporary_name(dest)
    try:
        work.mkdir(parents=True)
        shutil.copyfile(model.path, work / model.path.name)
        shutil.copyfile(sample, work / sample.name)
        for file in paintings(model).values():
            shutil.copyfile(file, work / file.name)
        (work / "README.md").write_text(readme(model, work), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
    except OSError as e:
        raise NSTError(f"{dest}: cannot write ({e.strerror or e})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog="tools/hub.py", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path, help="shipped ONNX files (infer/models/NAME.onnx)")
    p.add_argument("--out", type=Path, required=True, help="the folder the model folders go into")
    args = p.parse_args(argv)
    configure(p.prog)

    def run() -> int:
        models = []
        for path in args.models:
            if not path.is_file():
                raise NSTError(f"{path}: no such model file")
            models.append(shipped.ShippedModel(path.stem, path, shipped.read_metadata(path)))
        for model in models:
            print(json.dumps({"model": model.name, "folder": str(write_folder(model, args.out))}))
        return 0

    return exit_status(run)


if __name__ == "__main__":
    sys.exit(main())
