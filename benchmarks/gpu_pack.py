"""What a GPU session brings back of each run folder, small enough for one archive: the last sample grid as
JPEG and the TensorBoard scalars (losses, images/s) as CSV, written into LOGS (benchmarks/gpu_session.sh)."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image


def last_sample(run: Path, logs: Path) -> None:
    grids = sorted((run / "samples").glob("*.png"))
    if grids:
        Image.open(grids[-1]).convert("RGB").save(logs / f"{run.name}_{grids[-1].stem}.jpg", quality=88)


def scalars_csv(run: Path, logs: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((run / "tensorboard").rglob("events.out.tfevents.*")).parent), {"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    rows: dict[int, dict[str, float]] = {}
    for tag in tags:
        for e in events.Scalars(tag):
            rows.setdefault(e.step, {})[tag] = e.value
    lines = ["step," + ",".join(tags)]
    lines += [f"{step}," + ",".join(str(rows[step].get(t, "")) for t in tags) for step in sorted(rows)]
    (logs / f"{run.name}_scalars.csv").write_text("\n".join(lines) + "\n")


def main(runs: Path, logs: Path) -> None:
    for run in sorted(p for p in runs.glob("*") if p.is_dir()):
        for step in (last_sample, scalars_csv):
            try:
                step(run, logs)
            except Exception as e:  # a missing piece must not cost the rest
                print(f"{run.name}: {step.__name__}: {type(e).__name__}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
