"""Which way a trained network paints pictures of another size than its own: judged by its own loss, then its default.

Run once a run ends. A network paints strokes for pictures of its *work size* (the painting's training size).
On the sample photos at the size where the two ways differ (twice the crop size; the crop size itself when the
painting was larger than the crops, so the network works on bigger pictures than its crops), with the painting
at that size (as `nst compare` scores), the network's own training loss scores its one-pass picture and its
picture through its work size (`nst_core.scales`: run also at the work size and blended, or run enlarged to it).
Some networks paint better strokes that way (udnie's shipped network: a third of the one-pass loss at 512 px),
some worse (starry_night's: 2.8x, its big yellow stars grow into blobs). The better one becomes the network's
default: ``work_size`` in its metadata is the work size, or 0 (one pass); `nst stylize --work-size` overrides it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nst_core.image_io import open_image, painting_at, pil_to_tensor
from nst_core.losses.perceptual import PerceptualLoss
from nst_core.scales import stylize_multiscale, upscale_factor
from train.config import TrainConfig


@torch.no_grad()
def check_work_size(
    net: nn.Module, loss_fn: PerceptualLoss, cfg: TrainConfig, photos: torch.Tensor
) -> dict[str, float | int]:
    """``{"work_size", "size", "loss_one_pass", "loss_work_size"}``: the default work size (the painting's
    training size, or 0), the pictures' size and the mean losses it was chosen by; ``photos``: (N, 3, H, W) at
    twice the crop size."""
    work = cfg.style_size or cfg.image_size
    if upscale_factor(cfg.image_size, work) > 1:  # the network works on pictures larger than its crops
        photos = F.interpolate(photos.float(), scale_factor=0.5, mode="bilinear", antialias=True).clamp(0, 1)
    size = max(photos.shape[-2:])
    device = next(loss_fn.encoder.parameters()).device
    loss = PerceptualLoss(loss_fn.encoder, cfg.loss)
    loss.set_style([pil_to_tensor(painting_at(open_image(cfg.style), size, loss_fn.encoder.min_side)).to(device)])

    def run(x: np.ndarray) -> np.ndarray:
        return net(torch.from_numpy(x).to(device)).float().cpu().numpy()

    was_training = net.training
    net.eval()
    totals = {"one_pass": 0.0, "work_size": 0.0}
    for photo in photos:
        x = photo[None].float().cpu().numpy()
        targets = loss.content_targets(photo[None].to(device))
        pictures = {"one_pass": run(x), "work_size": stylize_multiscale(run, x, work)}
        for name, y in pictures.items():
            picture = torch.from_numpy(np.clip(y, 0.0, 1.0)).to(device)
            totals[name] += float(loss(picture, targets)["total"]) / len(photos)
    net.train(was_training)
    better = totals["work_size"] < totals["one_pass"]
    return {
        "work_size": work if better else 0,
        "size": int(size),
        "loss_one_pass": round(totals["one_pass"], 1),
        "loss_work_size": round(totals["work_size"], 1),
    }
