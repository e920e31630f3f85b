#!/usr/bin/env bash
# Two-minute CPU demo of `nst train`: 20 steps at 64 px on scikit-image photos, then a resume to 30.
#   bash train/demo.sh [RUN_DIR]        (default RUN_DIR: /tmp/nst-train-demo, recreated)
set -euo pipefail
RUN=${1:-/tmp/nst-train-demo}
SK=$(python -c "import os, skimage.data; print(os.path.dirname(skimage.data.__file__))")
DATA=$(mktemp -d)
cp "$SK"/astronaut.png "$SK"/chelsea.png "$SK"/rocket.jpg "$SK"/motorcycle_left.png "$DATA"/
rm -rf "$RUN"
nst train --style "$SK/coffee.png" --data "$DATA" -o "$RUN" --max-steps 20 --image-size 64 \
    --variant small --checkpoint-every 10 --sample-every 10 --log-every 5
nst train -o "$RUN" --resume --max-steps 30          # picks up the saved config at step 20
python -c "from nst_core.checkpoint_io import load_network; n, m = load_network('$RUN'); print('network:', m['variant'], 'step', m['step'], 'style', m['style'])"
ls "$RUN" "$RUN/checkpoints" "$RUN/samples"
rm -rf "$DATA"
