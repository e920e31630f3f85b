"""`nst app` under a burst of users: N `/stylize` requests at once through `gradio_client`, on 127.0.0.1.

The server is the real app (`infer.app.ui.build_app`, the shipped models) on a free local port. First a
baseline in the same run: requests one after another (the latency of one user alone). Then each burst size:
N clients in threads, each submitting one request at the same moment; every answer is checked to be a
complete picture of the asked size. Printed: answered / refused / failed, and the p50 / p95 / max latency.

    python benchmarks/app_load.py                             # starry_night_fast, 256 px, bursts of 20 and 50
    python benchmarks/app_load.py --model udnie --size 512 --bursts 20,50,100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nst_core.cli.options import list_of, positive_int
from nst_core.image_io import open_image, resize_longer
from nst_core.machine import describe, machine_info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def one_request(client: Any, photo: Path, model: str, size: int) -> tuple[str, float]:
    """("ok" | "refused: ..." | "failed: ...", seconds) of one /stylize call; "ok" only for a whole picture."""
    import gradio_client
    from PIL import Image

    t0 = time.perf_counter()
    try:
        out, _ = client.predict(gradio_client.handle_file(photo), model, 1.0, False, size, api_name="/stylize")
        with Image.open(out) as image:
            image.load()  # a cut-off download fails here
            outcome = "ok" if max(image.size) == size else f"failed: size {image.size}"
    except Exception as e:
        kind = "refused" if "queue is full" in str(e).lower() else "failed"
        outcome = f"{kind}: {type(e).__name__}: {str(e)[:120]}"
    return outcome, time.perf_counter() - t0


def burst(server: str, photo: Path, model: str, size: int, n: int) -> dict[str, Any]:
    """``n`` clients, each connected beforehand, all released at once; their outcomes and latencies."""
    import gradio_client

    clients = [gradio_client.Client(server, verbose=False) for _ in range(n)]
    start, results = threading.Barrier(n), [None] * n

    def user(i: int) -> None:
        start.wait()
        results[i] = one_request(clients[i], photo, model, size)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    seconds = [s for outcome, s in results if outcome == "ok"]
    problems = sorted({outcome for outcome, _ in results if outcome != "ok"})
    return {
        "requests": n,
        "answered": len(seconds),
        "refused": sum(outcome.startswith("refused") for outcome, _ in results),
        "failed": sum(outcome.startswith("failed") for outcome, _ in results),
        "p50_s": round(percentile(seconds, 0.5), 3) if seconds else None,
        "p95_s": round(percentile(seconds, 0.95), 3) if seconds else None,
        "max_s": round(max(seconds), 3) if seconds else None,
        "wall_s": round(wall, 3),
        "problems": problems[:5],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="starry_night_fast", help="a shipped model's name")
    p.add_argument("--size", type=positive_int, default=256, help="output's longer side in px")
    p.add_argument("--bursts", type=list_of(positive_int), default=[20, 50], help="concurrent requests, per burst")
    p.add_argument("--alone", type=positive_int, default=10, help="one-after-another requests of the baseline")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    import gradio_client

    from infer.app import ui
    from infer.app.ui import build_app, launch

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        resize_longer(open_image("skimage:astronaut"), 512).save(photo)
        demo = build_app(None)  # the shipped models
        port = free_port()
        launch(demo, "127.0.0.1", port, False, prevent_thread_lock=True, quiet=True)
        server = f"http://127.0.0.1:{port}/"
        try:
            client = gradio_client.Client(server, verbose=False)
            one_request(client, photo, args.model, args.size)  # warm-up: the model loads once
            alone = [one_request(client, photo, args.model, args.size) for _ in range(args.alone)]
            if any(outcome != "ok" for outcome, _ in alone):
                print(f"a request alone failed: {alone}", file=sys.stderr)
                return 1
            seconds = [s for _, s in alone]
            baseline = {"requests": args.alone, "p50_s": round(statistics.median(seconds), 3)}
            bursts = [burst(server, photo, args.model, args.size, n) for n in args.bursts]
        finally:
            demo.close()
    report = {
        "machine": describe(machine_info()),
        "model": args.model,
        "size": args.size,
        "queue_size": getattr(ui, "QUEUE_SIZE", 16),  # 16: before the queue was sized for bursts
        "alone": baseline,
        "bursts": bursts,
    }
    print(f"{report['machine']}\n{args.model} at {args.size} px, queue of {report['queue_size']}")
    print(f"one user alone: median {baseline['p50_s']} s over {args.alone} requests")
    print("burst | answered | refused | failed | p50 s | p95 s | max s | wall s")
    for b in bursts:
        cells = (b["requests"], b["answered"], b["refused"], b["failed"], b["p50_s"], b["p95_s"], b["max_s"])
        print(" | ".join(map(str, (*cells, b["wall_s"]))))
        for problem in b["problems"]:
            print(f"  {problem}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
