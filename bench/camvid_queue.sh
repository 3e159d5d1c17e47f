#!/usr/bin/env bash
# Runs every CamVid student row one after the other (same budget), then scores each on test.
# Usage: bash bench/camvid_queue.sh [recipe names...]   (logs in logs/)
set -u
cd "$(dirname "$0")/.."
names=${*:-"student_only kd cwd bpkd skd ifvd"}
while [ ! -f checkpoints/camvid_deeplabv3plus_lite2.safetensors ]; do sleep 20; done
for n in $names; do
  .venv/bin/distill run recipes/camvid/$n.yaml > logs/camvid_$n.log 2>&1
done
for n in $names; do
  .venv/bin/distill eval runs/camvid_$n/student.safetensors --data camvid --data-root ../shared/data/camvid \
    --split test --json runs/camvid_$n/test_metrics.json > logs/camvid_${n}_test.log 2>&1
done
.venv/bin/distill eval checkpoints/camvid_deeplabv3plus_lite2.safetensors --data camvid --data-root ../shared/data/camvid \
  --split test --json runs/camvid_deeplabv3plus_lite2/test_metrics.json > logs/camvid_teacher_test.log 2>&1
