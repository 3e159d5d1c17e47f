#!/usr/bin/env bash
# One stream of CamVid rows, run one after the other on one CPU thread each (two streams fill
# two cores without fighting over OpenMP threads), then each row scored on the test split.
# Usage: bash bench/camvid_stream.sh student_only cwd skd   (logs in logs/)
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
# DISTILL_SNAPSHOT: a frozen copy of the package to run while this tree is being edited
export PYTHONPATH=${DISTILL_SNAPSHOT:-}
while [ ! -f checkpoints/camvid_deeplabv3plus_lite2.safetensors ]; do sleep 15; done
for n in "$@"; do
  .venv/bin/distill run recipes/camvid/$n.yaml data.workers=0 > logs/camvid_$n.log 2>&1
  .venv/bin/distill eval runs/camvid_$n/student.safetensors --data camvid --data-root ../shared/data/camvid \
    --split test --json runs/camvid_$n/test_metrics.json > logs/camvid_${n}_test.log 2>&1
done
