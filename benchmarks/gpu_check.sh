#!/usr/bin/env bash
# The GPU checks on a lent GPU, in two calls that fit its 15 minutes (start-up included):
#   bash benchmarks/gpu_check.sh checks   (~7 min) the GPU tests (tests/test_gpu.py), training throughput model-bound
#                                         and through the real loader (benchmarks/gpu_check.py -> results/gpu_check.*),
#                                         and the GPU preset with augment.on_device at batch 256 timed at the union's size
#   bash benchmarks/gpu_check.sh ab       (~3 min) the GPU preset with its augmentation in the workers against the same
#                                         run augmented on the GPU (batch 64 both), trained from scratch on the carried
#                                         faces and scored on the same held-out fold: does the batched augmentation
#                                         train as well as Albumentations?
# Everything it needs travels with the checkout, made by `python -m benchmarks.gpu_check --carry-from M.framed.csv`:
#   .whl/  wheels the GPU image lacks (albumentations and its needs, omegaconf, kornia, facenet-pytorch), cp312
#   .gpu/  5,400 faces of the framed manifest (with landmarks), re-saved as JPEG; no weights (model.pretrained=none)
# Through the device tool: run(command="bash benchmarks/gpu_check.sh checks", carry=[".whl", ".gpu"]); results in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
STAGE=${1:-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))"
sed "s#GPU_CARRY/#$PWD/.gpu/#" .gpu/utk.framed.csv > /tmp/utk.csv  # the faces: this checkout's

run_preset() {  # name, seconds allowed, manifest, overrides...
  local name=$1 limit=$2 manifest=$3
  shift 3
  local start=$SECONDS
  timeout "$limit" python3 -m faceattr train -c configs/utkface_age_gender_gpu.yaml "data.manifest=$manifest" \
    model.pretrained=none run.dir=/tmp/runs "run.name=$name" train.progress_bar=false "$@" --no-onnx-cache \
    > "$OUT/preset_$name.log" 2>&1
  local rc=$?
  python3 - "$name" "$rc" "$((SECONDS - start))" "$limit" <<'EOF' | tee -a "$OUT/preset.txt"
import sys

import pandas as pd

name, rc, wall, limit = sys.argv[1:]
try:
    m = pd.read_csv(f"/tmp/runs/{name}/csv/metrics.csv")
except FileNotFoundError:
    sys.exit(print(f"{name}: exit {rc}, {wall} s wall (limit {limit} s), no metrics"))
val = m.dropna(subset=["val/error"])
best = val.loc[val["val/error"].idxmin()]
print(
    f"{name}: exit {rc}, {wall} s wall (limit {limit} s), {int(val['epoch'].max()) + 1} epochs validated; best epoch "
    f"{int(best['epoch'])}: gender acc {best['val/acc_gender']:.4f}, age MAE {best['val/age_mae']:.3f}, "
    f"age-bin F1 {best['val/f1_age_bin']:.4f} on the held-out fold"
)
EOF
  grep -E "batch_size|error|Error" "$OUT/preset_$name.log" | tail -3
}

if [ "$STAGE" = checks ]; then
  echo "== 1. GPU tests"
  timeout 110 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"

  echo "== 2. the union's size (21,600 rows: the 5,400 faces 4 times) and its decoded cache"
  python3 - <<'EOF'
import pandas as pd

faces = pd.read_csv("/tmp/utk.csv")
copies = [faces.assign(person_id=faces["person_id"].astype(str) + f"#{k}") for k in range(4)]
pd.concat(copies, ignore_index=True).to_csv("/tmp/union_size.csv", index=False)
EOF
  timeout 60 python3 -m faceattr cache /tmp/utk.csv --size 160 --out /tmp/faces.npy 2>&1 | tail -1

  echo "== 3. throughput"
  timeout 170 python3 -m benchmarks.gpu_check --manifest /tmp/union_size.csv --workers 15 \
    --decoded-cache /tmp/faces.npy 2>&1 | grep -v Warning | tail -16 | tee "$OUT/gpu_check.txt"
  cp benchmarks/results/gpu_check.json benchmarks/results/gpu_check.md "$OUT"/ 2>/dev/null

  echo "== 4. the GPU preset, batch 256 augmented on the GPU, at the union's size (speed)"
  run_preset on_device_bs256 140 /tmp/union_size.csv data.batch_size=256 optim.lr=4e-3 augment.on_device=true \
    data.decoded_cache=/tmp/faces.npy
else
  echo "== A/B: augmentation in the workers against on the GPU, batch 64, from scratch on 5,400 faces"
  run_preset workers 110 /tmp/utk.csv
  run_preset on_device 100 /tmp/utk.csv augment.on_device=true
fi
echo "== done"
