#!/usr/bin/env bash
# Rebuild a bundled model from nothing but this repository: record the simulator datasets, export
# training bundles, train (<= 30 min on a 2-core CPU), evaluate on held-out seeds.
#   models/zoo/rebuild.sh pick_place     # or stack_three
# Writes data under ${STAGEWARD_DATA:-./zoo-data}; the package goes to models/zoo/<task>.
set -euo pipefail
task=${1:?usage: models/zoo/rebuild.sh pick_place|stack_three}
case $task in pick_place) short=pp ;; stack_three) short=st ;; *) echo "unknown task $task" >&2; exit 2 ;; esac
cd "$(dirname "$0")/../.."
data=${STAGEWARD_DATA:-zoo-data}
sw="node bin/stageward.js"
mkdir -p "$data/bundles"
# training data: seeds 1-3 (mixed has >= 40% flawed episodes; failed episodes teach low final progress)
$sw sim record --task "$task" --episodes 120 --preset mixed  --seed 1 --out "$data/$task-train-mixed"  --no-progress --overwrite
$sw sim record --task "$task" --episodes 60  --preset expert --seed 2 --out "$data/$task-train-expert" --no-progress --overwrite
$sw sim record --task "$task" --episodes 20  --preset failed --seed 3 --out "$data/$task-train-failed" --no-progress --overwrite
# held-out data: other seeds; the randomised set uses lights, colours, camera jitter and distractors never seen in training
$sw sim record --task "$task" --episodes 40 --preset mixed  --seed 9  --out "$data/$task-heldout-mixed"  --no-progress --overwrite
$sw sim record --task "$task" --episodes 10 --preset failed --seed 10 --out "$data/$task-heldout-failed" --no-progress --overwrite
$sw sim record --task "$task" --episodes 20 --preset mixed  --seed 11 --randomize all --out "$data/$task-heldout-rand" --no-progress --overwrite
for part in train-mixed train-expert train-failed heldout-rand; do
  $sw dataset export --dataset "$data/$task-$part" --out "$data/bundles/$short-$part" --size 96 --overwrite
done
$sw train --bundle "$data/bundles/$short-train-mixed" --bundle "$data/bundles/$short-train-expert" --bundle "$data/bundles/$short-train-failed" \
  --out "models/zoo/$task" --name "$task" --task "$task" --time-budget-min 26 --seed 0 --work-dir "$data/runs/$task" \
  --eval-bundle "$data/bundles/$short-heldout-rand"
$sw eval --model "models/zoo/$task" --dataset "$data/$task-heldout-mixed" --dataset "$data/$task-heldout-failed" --task "$task" --out "$data/eval/$task"
$sw eval --model "models/zoo/$task" --dataset "$data/$task-heldout-rand" --task "$task" --out "$data/eval/$task-rand"
