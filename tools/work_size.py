"""Maintainer tool: give shipped ONNX models the default a finished `nst train` run gives its network.

For each model: its own training loss (``nst.config``) scores, on the sample photos at 512 px and its painting at
512 px, its one-pass picture and its picture through its work size (256 px, `nst_core.scales`); the better
way becomes ``nst.work_size`` (256, or 0: one pass), with ``nst.work_size_check`` holding the two losses
(`train.work_size`). A distilled `_fast` model takes its teacher's answer (it learnt to paint as its teacher).
The file is rewritten in place (atomically); its weights are untouched.

    python tools/work_size.py infer/models/*.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORK = 256  # the painting's training size of every shipped network (configs/*.yaml)
PHOTOS = ("skimage:chelsea", "skimage:coffee", "skimage:astronaut")  # the cards' sample photos, and one more


def check(path: Path, photo_files: Sequence[str]) -> dict:
    """`train.work_size.check_work_size` on the ONNX model at ``path`` (through onnxruntime)."""
    import torch

    from infer.compare.model import OnnxModel
    from infer.models import shipped_models
    from nst_core.image_io import center_crop, open_image, pil_to_tensor
    from nst_core.losses.perceptual import PerceptualLoss
    from train.config import TrainConfig
    from train.teacher import OnnxTeacher
    from train.work_size import check_work_size

    model = OnnxModel(path, "cpu")
    style = next(str(m.style_image) for m in shipped_models() if m.path.resolve() == path.resolve())
    cfg = TrainConfig(style=style, image_size=WORK, loss=model.training_loss())
    photos = torch.stack([pil_to_tensor(center_crop(open_image(p), 2 * WORK)) for p in photo_files])
    return check_work_size(OnnxTeacher(str(path)), PerceptualLoss.build(cfg.loss), cfg, photos)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--photos", nargs="+", default=list(PHOTOS), help="photos to judge by (not the held-out ones)")
    args = p.parse_args(argv)
    from infer.models.shipped import read_metadata
    from tools.ship import rewrite_metadata

    teacher_of = {m: json.loads(read_metadata(m).get("nst.config", "{}")).get("teacher") for m in args.models}
    answers: dict[str, dict] = {}
    for path in (m for m in args.models if not teacher_of[m]):
        answers[path.stem] = check(path, args.photos)
        print(f"{path.stem}: {json.dumps(answers[path.stem])}", flush=True)
    for path in args.models:
        teacher = teacher_of[path]
        answer = answers.get(teacher, {}) if teacher else answers[path.stem]
        if not answer:
            print(f"{path.stem}: its teacher {teacher!r} was not checked; left alone", file=sys.stderr)
            continue
        values = {"nst.work_size": str(answer["work_size"])}
        values["nst.work_size_check"] = json.dumps(answer | ({"as_teacher": teacher} if teacher else {}))
        rewrite_metadata(path, values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
