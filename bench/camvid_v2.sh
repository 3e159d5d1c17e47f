#!/usr/bin/env bash
# CamVid v2 rows (recipes/camvid/v2/ROW.yaml, else recipes/camvid/ROW.yaml), one after the other, each then scored on the test split.
# Each argument is ROW:SEED (e.g. student_only:0 cwd:1); a row's run folder is runs/v2/ROW_sSEED,
# and an interrupted row continues where its last checkpoint left it (--resume), so the same
# command can be started again in a later session. Logs in logs/v2_ROW_sSEED{,_test}.log.
# THREADS (default 2) sets the torch threads; DISTILL_SNAPSHOT a frozen copy of the package to run
# while this tree is being edited. A finished row's metrics.json and test_metrics.json are copied
# to results/camvid_v2/ROW_sSEED/ (tracked: the figures outlive the machine; the run folder does not),
# and a row already there is skipped, so one command lists every row a table needs.
#   bash bench/camvid_v2.sh student_only:0 student_only:1 cwd:0
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${THREADS:-2}
export PYTHONPATH=${DISTILL_SNAPSHOT:-}
mkdir -p logs runs/v2
for item in "$@"; do
  row=${item%%:*}; seed=${item##*:}; run=runs/v2/${row}_s${seed}
  if [ -f "results/camvid_v2/${row}_s${seed}/test_metrics.json" ] && [ ! -d "$run" ]; then
    echo "$item: already in results/camvid_v2 (remove that folder to run it again)"; continue
  fi
  recipe=recipes/camvid/v2/$row.yaml
  [ -f "$recipe" ] || recipe=recipes/camvid/$row.yaml  # rows of the method issues (lad, mgd_1-8, ...)
  if [ ! -f "$run/test_metrics.json" ]; then
    .venv/bin/distill run $recipe train.seed=$seed --out-dir "$run" --resume \
      > logs/v2_${row}_s${seed}.log 2>&1 || { echo "$item failed, see logs/v2_${row}_s${seed}.log"; continue; }
    .venv/bin/distill eval "$run/student.safetensors" --data camvid --data-root ../shared/data/camvid \
      --split test --json "$run/test_metrics.json" > logs/v2_${row}_s${seed}_test.log 2>&1
  fi
  mkdir -p results/camvid_v2/${row}_s${seed}
  cp "$run/metrics.json" "$run/test_metrics.json" results/camvid_v2/${row}_s${seed}/
  echo "$item done: $(python3 -c "import json;v=json.load(open('$run/metrics.json'));t=json.load(open('$run/test_metrics.json'));print(f\"val {v['miou']:.2f} test {t['miou']:.2f}\")")"
done
