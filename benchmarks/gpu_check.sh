#!/usr/bin/env bash
# The GPU checks in one run on a lent GPU (about 8 minutes): the GPU tests (tests/test_gpu.py), training throughput
# model-bound and through the real loader (benchmarks/gpu_check.py -> benchmarks/results/gpu_check.json), and the
# GPU preset trained end to end at the UTKFace union's size. Everything it needs travels with the checkout:
#   .whl/  wheels the GPU image lacks (albumentations and its needs, omegaconf, kornia, facenet-pytorch), cp312
#   .gpu/  6,000 UTKFace faces at 144 px and their framed manifest with landmarks, made on the CPU machine with
#          `faceattr prepare utkface .gpu/faces` then `faceattr framing ... --landmarks --out .gpu/utk.framed.csv`
# Through the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpu"]); results land in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0))"
sed "s#/work/main/.gpu/#$PWD/.gpu/#" .gpu/utk.framed.csv > /tmp/utk.csv  # the manifest's paths: this checkout's

echo "== 1. GPU tests"
timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"

echo "== 2. throughput"
timeout 150 python3 -m benchmarks.gpu_check --manifest /tmp/utk.csv 2>&1 | tail -25 | tee "$OUT/gpu_check.txt"
cp benchmarks/results/gpu_check.json benchmarks/results/gpu_check.md "$OUT"/ 2>/dev/null

echo "== 3. the GPU preset end to end, 21,600 rows (the 6,000 faces 3.6 times: the union's size; speed only)"
python3 - <<'EOF'
import pandas as pd

faces = pd.read_csv("/tmp/utk.csv")
copies = [faces.assign(person_id=faces["person_id"].astype(str) + f"#{k}") for k in range(4)]
pd.concat(copies, ignore_index=True).iloc[:21600].to_csv("/tmp/union_size.csv", index=False)
EOF
run_preset() {  # name, seconds allowed, overrides...
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" python3 -m faceattr train -c configs/utkface_age_gender_gpu.yaml data.manifest=/tmp/union_size.csv \
    model.pretrained=none run.dir=/tmp/runs "run.name=$name" train.progress_bar=false "$@" --no-onnx-cache \
    > "$OUT/preset_$name.log" 2>&1
  local rc=$?
  local epochs
  epochs=$(python3 -c "import pandas as p; m=p.read_csv('/tmp/runs/$name/csv/metrics.csv'); print(int(m.epoch.max()) + 1)" \
    2>/dev/null)
  echo "preset $name: exit $rc, $((SECONDS - start)) s wall (limit $limit s), epochs logged: ${epochs:-0} of 12" \
    | tee -a "$OUT/preset.txt"
  grep -E "batch_size|best checkpoint|error" "$OUT/preset_$name.log" | tail -3
}
run_preset shipped 200
run_preset bs256_on_device 80 data.batch_size=256 augment.on_device=true optim.lr=4e-3
cat /tmp/runs/*/train_summary.json 2>/dev/null | tr -d '\n' | head -c 1500 > "$OUT/preset_summaries.json"
echo "== done"
