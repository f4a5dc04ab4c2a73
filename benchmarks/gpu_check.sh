#!/usr/bin/env bash
# Chapter 5's GPU check: one command on a CUDA machine, about 7 minutes, every step through the CLI.
#
#   1. Speed. ResNet-18 at 128², batch 512, bf16, channels-last, the whole Fashion-MNIST training set
#      (60 000 images) resident on the GPU as uint8: Algorithm 1 against Algorithm 2 at δ = 0.2, 3
#      equivalent epochs each, after an untimed warm-up. Table 1 of speed_report.md gives images per
#      second for each and the ratio of their times per back-prop (the paper's Table 1 has 3.2×; its
#      data was CIFAR-10, 3 channels: Fashion-MNIST's 1 channel changes only the first convolution).
#   2. The five networks. A 2-epoch sweep of resnet18, resnet50, efficientnet_b4, tf_efficientnetv2_s and
#      mobilenetv3_small_100 on Fashion-MNIST at 128² (Algorithm 1 and hardest δ = 0.2, seed 0), fastest
#      network first: five_report.md. Each step has a time limit; a sweep stopped by it keeps its
#      finished runs, and the same command continues it.
#
# Usage:   benchmarks/gpu_check.sh [OUT]          OUT: $OUT if set, else runs/gpu_check
#          SMOKE=1 PYTHON=.venv/bin/python benchmarks/gpu_check.sh /tmp/x
#                                                  the same steps, tiny, on a CPU (checks this script)
# Writes:  OUT/gpu_check.log, OUT/env.txt, OUT/speed_report.md, OUT/five_report.md and
#          OUT/gpu_check.tar.gz (every record, CSV and figure), few files so that all come back.
# Needs:   python3 with torch (CUDA), torchvision, timm, scipy, matplotlib, tqdm; this checkout goes on
#          PYTHONPATH, nothing is installed. Data: Fashion-MNIST's four .gz files, from Debian's package
#          dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or, on a machine without internet,
#          carried in this checkout's .data/fashion-mnist-gz/ (keep .data/ out of git:
#          mkdir -p .data/fashion-mnist-gz && cp /usr/share/datasets/fashion-mnist/*.gz .data/fashion-mnist-gz/
#          && echo /.data/ >> .git/info/exclude).
# Evidence: written and smoke-tested on a CPU; no GPU was lent while it was written, so its GPU
#          numbers are still to be measured.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/gpu_check}}
WORK=${WORK:-$(mktemp -d /tmp/hardbatch-gpu-check.XXXXXX)}
mkdir -p "$OUT" "$WORK"
PY=${PYTHON:-python3}  # here: PYTHON=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HARDBATCH_DATA=${HARDBATCH_DATA:-$WORK/data}

main() {  # every step; its output goes to the terminal and to OUT/gpu_check.log
if [ -n "${SMOKE:-}" ]; then  # tiny sizes on a CPU: the same commands, minutes instead of a GPU
    DEV=(--device cpu); SPEED=(--image-size 32 --batch-size 64 --subset 512 --test-subset 200 --epochs 2)
    FIVE=(--image-size 32 --batch-size 64 --subset 128 --test-subset 200 --epochs 1); LIMIT1=300; LIMIT2=600
else
    DEV=(--device cuda); SPEED=(--image-size 128 --batch-size 512 --epochs 3)
    FIVE=(--image-size 128 --batch-size 512 --test-subset 5000 --epochs 2); LIMIT1=${LIMIT1:-150}; LIMIT2=${LIMIT2:-300}
fi

echo "== environment"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi";
  $PY -c "import torch, torchvision, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else None, '| torchvision', torchvision.__version__,
'| timm', timm.__version__)"; } | tee "$OUT/env.txt"

echo "== data: Fashion-MNIST into $HARDBATCH_DATA"
$PY - <<'EOF'
from pathlib import Path
from hardbatch.data import default_root, unpack_debian_fashion_mnist
sources = [Path(".data/fashion-mnist-gz"), Path("/usr/share/datasets/fashion-mnist")]
if not any(unpack_debian_fashion_mnist(default_root(), source=s) for s in sources):
    raise SystemExit(f"Fashion-MNIST's .gz files are in none of {[str(s) for s in sources]}: see this script's header")
print("ok:", default_root() / "FashionMNIST" / "raw")
EOF

echo "== 1. speed: resnet18, Algorithm 1 vs Algorithm 2 at δ = 0.2"
timeout "$LIMIT1" $PY -m hardbatch sweep --models resnet18 --datasets fashion-mnist --deltas 0.2 --controls \
    --seeds 0 "${SPEED[@]}" "${DEV[@]}" --lr 0.005 --out "$WORK/speed" \
    || echo "step 1 stopped (status $?); its finished runs are kept"
$PY -m hardbatch report "$WORK/speed" > /dev/null && cp "$WORK/speed/report/report.md" "$OUT/speed_report.md"
$PY - "$WORK/speed/report/table1.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    ratio = f"{float(r['ratio']):.3f}" if r["ratio"] else "-"
    print(f"{r['arm']:22s} {float(r['dt_ms']):8.2f} ms/back-prop {float(r['images_per_s']):9.0f} images/s "
          f"Δt ÷ Algorithm 1's: {ratio}")
EOF

echo "== 2. the five networks, 2 epochs each arm"
timeout "$LIMIT2" $PY -m hardbatch sweep \
    --models mobilenetv3_small_100 resnet18 resnet50 tf_efficientnetv2_s efficientnet_b4 \
    --datasets fashion-mnist --deltas 0.2 --controls --seeds 0 "${FIVE[@]}" "${DEV[@]}" --lr 0.005 \
    --out "$WORK/five" || echo "step 2 stopped (status $?); its finished runs are kept: run again to continue"
$PY -m hardbatch report "$WORK/five" > /dev/null && cp "$WORK/five/report/report.md" "$OUT/five_report.md"
grep -A 14 "^## Table 1" "$OUT/five_report.md" || true

tar -czf "$OUT/gpu_check.tar.gz" -C "$WORK" speed five
echo "== done: $OUT"
}

main 2>&1 | tee "$OUT/gpu_check.log"
