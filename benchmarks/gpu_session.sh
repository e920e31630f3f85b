#!/usr/bin/env bash
# One lent GPU session, prepared to run unattended inside the device tool's 10-minute command limit
# (benchmarks/README.md, "On a GPU"). In order, each phase time-boxed, results copied out as they exist:
#   1. train the shipped styles with Johnson et al.'s recipe (standard network, batch 4, 256 px crops,
#      Adam 1e-3, up to 40,000 steps), all at once on the one GPU, for TRAIN_SECONDS of training each
#      (--max-time: a checkpoint and the network are written; --resume goes on);
#   2. the GPU speed benchmarks alone on the GPU (train_speed.py, torch_infer_speed.py);
#   3. every command once on CUDA (optimize, export, stylize, compare, models).
# Usage, from the repository root:  bash benchmarks/gpu_session.sh PHOTOS WHEELS OUT TRAIN_SECONDS
#   PHOTOS: training image folder; WHEELS: folder of wheels to install first ("" for none); OUT: results.
# Environment: STYLES (default: the six built-in styles), DEVICE (cuda), WORK (/tmp/nst_gpu), INIT_FROM (a folder
# of STYLE.safetensors to go on from, e.g. the last session's networks: a device's checkpoints do not come back),
# TRAIN_ONLY (set: stop after phase 1, when phases 2-3 already ran on this kind of device),
# TRAIN_FLAGS (more `nst train` flags, e.g. --compile), TRAIN_SPEED_ARGS and INFER_SPEED_ARGS (the benchmarks'
# size options, smaller for a dry run on a CPU). benchmarks/gpu_prepare.sh makes PHOTOS, WHEELS and INIT_FROM.
set -u
photos=$1 wheels=$2 out=$3 budget=$4
styles=${STYLES:-starry_night the_scream great_wave udnie composition_vii shipwreck}
device=${DEVICE:-cuda}
work=${WORK:-/tmp/nst_gpu}
log=$work/logs
mkdir -p "$log" "$work/smoke" "$out"
export TQDM_MININTERVAL=15 PYTHONUNBUFFERED=1
if [ -n "$wheels" ]; then  # the machine's own torch, accelerate, onnxruntime; the rest as carried wheels
  whl=("$wheels"/*.whl)  # datasets 5 needs pyarrow >= 24; with an older one, the datasets 4 wheel in WHEELS_old
  if ! python3 -c "import pyarrow, sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24)"; then
    whl=($(ls "$wheels"/*.whl | grep -v /datasets-) "${wheels}_old"/datasets-*.whl)
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation \
    --target /tmp/site "${whl[@]}" . >"$log/pip.log" 2>&1 || { tail -5 "$log/pip.log"; exit 1; }
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi

pack() {  # logs, configs, loss curves, last samples, reports: one small archive (at most 8 files come back)
  python3 benchmarks/gpu_pack.py "$work/runs" "$log" 2>>"$log/pack.err"
  tar -czf "$out/logs.tar.gz" --exclude='checkpoints' --exclude='*.safetensors' --exclude='images' \
    --exclude='grid.png' --exclude='*.onnx' --exclude='samples' --exclude='tensorboard' -C "$work" logs smoke runs
}

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  python3 -c "import torch, accelerate, datasets, onnxruntime as o; print('torch', torch.__version__,
'cuda', torch.cuda.is_available(), 'accelerate', accelerate.__version__, 'datasets', datasets.__version__,
'onnxruntime', o.__version__, o.get_available_providers())"
} >"$log/versions.txt" 2>&1
cat "$log/versions.txt"

echo "== 1. training: $styles, $budget s each, all at once"
start=$(date +%s)
train() {  # STYLE SECONDS [FLAGS...]
  local s=$1 seconds=$2
  shift 2
  local init=()
  [ -n "${INIT_FROM:-}" ] && [ -f "$INIT_FROM/$s.safetensors" ] && init=(--init-from "$INIT_FROM/$s.safetensors")
  # shellcheck disable=SC2086  # TRAIN_FLAGS is a list of flags
  nst train -c "$s" --data "$photos" -o "$work/runs/$s" --variant standard --max-steps 40000 \
    --max-time "$seconds" --checkpoint-every 2500 --keep-checkpoints 1 --sample-every 5000 --json "${init[@]}" \
    ${TRAIN_FLAGS:-} "$@" >"$log/$s.json" 2>>"$log/$s.log" &
}
for s in $styles; do train "$s" "$budget" --mixed-precision bf16; done
sleep 60  # a run that died at its start (a CUDA path never run before) gets one retry on the plainest path
for s in $styles; do
  if [ ! -s "$log/$s.json" ] && ! pgrep -f -- "-o $work/runs/$s " >/dev/null; then
    echo "$s died at its start; retrying in fp32 without fused Adam or channels-last:"
    tail -3 "$log/$s.log"
    rm -rf "$work/runs/$s"
    train "$s" $((budget - 60)) --mixed-precision no --no-fused-adam --no-channels-last --num-workers 0
  fi
done
wait
echo "training took $(($(date +%s) - start)) s wall"
for s in $styles; do
  cp "$work/runs/$s/network.safetensors" "$out/$s.safetensors" 2>/dev/null || echo "$s: no network"
  echo "$s: $(cat "$log/$s.json")"
  grep -E "Error|error:" "$log/$s.log" | tail -3
done
pack
[ -n "${TRAIN_ONLY:-}" ] && { ls -la "$out"; exit 0; }

echo "== 2. speed benchmarks (nothing else on the GPU)"
timeout 150 python3 benchmarks/train_speed.py --device "$device" ${TRAIN_SPEED_ARGS:---batch-sizes 4,16 --steps 20 \
  --warmup 3 --variants bf16,bf16+net-cl,bf16+compile-step} --photos "$photos" 2>&1 | tee "$log/train_speed.txt"
timeout 120 python3 benchmarks/torch_infer_speed.py --device "$device" ${INFER_SPEED_ARGS:-} 2>&1 |
  tee "$log/torch_infer_speed.txt"
pack

echo "== 3. every command once on $device"
first=${styles%% *}
smoke() {  # NAME SECONDS COMMAND...: exit status and wall time of one command
  local name=$1 limit=$2 t
  shift 2
  t=$(date +%s)
  timeout "$limit" "$@" >"$log/smoke_$name.out" 2>"$log/smoke_$name.err"
  echo "$name: exit $? in $(($(date +%s) - t)) s: $*" | tee -a "$log/smoke.txt"
}
smoke optimize 90 nst optimize skimage:astronaut --style "$first" -o "$work/smoke/optimize.jpg" --device "$device" --json
smoke export 60 nst export "$work/runs/$first" -o "$work/smoke/$first.onnx" --json
smoke stylize 60 nst stylize skimage:chelsea --model "$work/smoke/$first.onnx" -o "$work/smoke/stylize.jpg" --json
smoke compare 90 nst compare skimage:chelsea --style "$first" --model "$work/runs/$first" -o "$work/smoke/report" \
  --size 256 --steps 25,50,100 --metric model --device "$device" --json
smoke models 30 nst models
pack
ls -la "$out"
