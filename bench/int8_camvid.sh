#!/usr/bin/env bash
# Issue #17's CamVid figures: the v2 headline student and its 50%-pruned, distilled copy, each as
# fp32 (torch eager and ONNX Runtime), int8 PTQ and int8 QAT+KD, after
#   distill run recipes/camvid/v2/quantize_kd.yaml --out-dir runs/v2/quantize_kd
#   distill run recipes/camvid/v2/prune50_kd_quantize.yaml --out-dir runs/v2/prune50_kd_quantize
# Writes OUT (default results/camvid_v2/int8/): test-split metrics of every file, and one `distill compare` of all
# eight, timed side by side in one run (batch 1, 360x480, THREADS torch and onnxruntime threads,
# default 2; run it on a quiet machine; EXTRA="name=FILE ..." adds files; EVAL_ONLY=1 scores the files and stops before the timing). Val metrics are in compare.json and in each run folder's
# quantize.json (copied to results/camvid_v2/<run>/).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${THREADS:-2}
out=${OUT:-results/camvid_v2/int8}  # OUT=results/camvid_v2/int8_vnni for a second machine's figures
mkdir -p "$out"
data=(--data camvid --data-root ../shared/data/camvid)
base=zoo/camvid_lightplus_lite0_v2_so1.safetensors
q=runs/v2/quantize_kd
p=${PRUNED:-runs/v2/prune50_kd_quantize}  # PRUNED=runs/v2/prune50_kd1500_quantize: the pruned row of another recipe
[ -f $q/fp32.onnx ] || .venv/bin/distill export $base --format onnx --out $q/fp32.onnx > /dev/null
[ -f $p/student.onnx ] || .venv/bin/distill export $p/student.safetensors --format onnx > /dev/null
files=($base $q/fp32.onnx $q/student.int8.onnx $q/student.qat.int8.onnx
       $p/student.safetensors $p/student.onnx $p/student.int8.onnx $p/student.qat.int8.onnx)
names=(base_torch base_fp32_onnx base_ptq base_qat pruned_torch pruned_fp32_onnx pruned_ptq pruned_qat)
for extra in ${EXTRA:-}; do  # EXTRA="name=path ...": more files in the same side-by-side run
  names+=("${extra%%=*}"); files+=("${extra#*=}")
done
for i in "${!files[@]}"; do
  [ -f "$out/${names[$i]}_test.json" ] || .venv/bin/distill eval "${files[$i]}" "${data[@]}" --split test \
      --json "$out/${names[$i]}_test.json" > /dev/null
done
[ -z "${EVAL_ONLY:-}" ] || exit 0
.venv/bin/distill compare "${files[@]}" --repeats ${REPEATS:-30} --format md --out "$out/compare.md"
.venv/bin/distill compare "${files[@]}" --repeats 0 --format json --out "$out/compare.json"  # the records; latency in compare.md
cat "$out/compare.md"
