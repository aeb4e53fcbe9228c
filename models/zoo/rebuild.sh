#!/usr/bin/env bash
# Rebuild a bundled model from nothing but this repository: record the simulator datasets (scripted
# demonstrations and rollouts of state policies as a learner produces them), export training bundles
# with the simulator's per-frame truth as labels, train (<= 30 min on a 2-core CPU), for pick_place
# also distil its encoder into a cheaper one (pick_place_fast, <= 24 min), evaluate on held-out seeds,
# and write the engine-path figures into the cards.
#   models/zoo/rebuild.sh pick_place     # or stack_three
# Writes data under ${STAGEWARD_DATA:-./zoo-data}; the package goes to models/zoo/<task>.
#
# Seeds (run seeds of `sim record`: episode i uses simulator seed seed*100000 + i):
#   training  1-3 demonstrations, 4-8 rollouts; RL checkpoints from `rl --seed 1`
#   held out  9-11 demonstrations, 31-32 rollouts (npm run experiment:reward records 30000+)
set -euo pipefail
task=${1:?usage: models/zoo/rebuild.sh pick_place|stack_three}
case $task in
  pick_place) short=pp; roll=1; distill=1 ;; # also pick_place_fast, its encoder distilled (below)
  stack_three) short=st; roll=2; distill=0 ;; # episodes twice as long: half as many rollouts
  *) echo "unknown task $task" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
data=${STAGEWARD_DATA:-zoo-data}
sw="node bin/stageward.js"
rec="$sw sim record --task $task --no-progress --overwrite"
mkdir -p "$data/bundles" "$data/policies"
n() { echo $(($1 / roll)); }

# state policies a learner passes through: checkpoints of an RL run on the simulator's true potential
# (simulator information only, never a learned reward model)
$sw rl --task "$task" --reward pbrs-true --rollouts 48 --seed 1 --eval-episodes 10 --out "$data/policies/$task-rl-48" --no-progress
$sw rl --task "$task" --reward pbrs-true --rollouts 160 --seed 1 --eval-episodes 10 --out "$data/policies/$task-rl-160" --no-progress

# training data: demonstrations (mixed has >= 40% flawed episodes; failed ones teach low final progress) ...
$rec --episodes 120 --preset mixed --seed 1 --out "$data/$task-train-mixed"
$rec --episodes 60 --preset expert --seed 2 --out "$data/$task-train-expert"
$rec --episodes 20 --preset failed --seed 3 --out "$data/$task-train-failed"
# ... and rollouts: the weak start (two demo seeds) plain, noisy and perturbed, and the RL checkpoints
$rec --episodes "$(n 20)" --policy weak --start-seed 0 --seed 4 --out "$data/$task-train-roll-weak"
$rec --episodes "$(n 40)" --policy weak --start-seed 1 --noise 0.1 --perturb mixed --seed 5 --out "$data/$task-train-roll-weak-n1"
$rec --episodes "$(n 40)" --policy weak --start-seed 2 --noise 0.3 --perturb mixed --seed 6 --out "$data/$task-train-roll-weak-n3"
$rec --episodes "$(n 20)" --policy "$data/policies/$task-rl-48/policy.json" --noise 0.3 --perturb mixed --seed 7 --out "$data/$task-train-roll-rl48"
$rec --episodes "$(n 20)" --policy "$data/policies/$task-rl-160/policy.json" --noise 0.2 --perturb mixed --seed 8 --out "$data/$task-train-roll-rl160"
# held-out data: other seeds; the randomised set uses lights, colours, camera jitter and distractors never seen in training
$rec --episodes 40 --preset mixed --seed 9 --out "$data/$task-heldout-mixed"
$rec --episodes 10 --preset failed --seed 10 --out "$data/$task-heldout-failed"
$rec --episodes 20 --preset mixed --seed 11 --randomize all --out "$data/$task-heldout-rand"
$rec --episodes 16 --policy weak --start-seed 0 --noise 0.3 --seed 31 --out "$data/$task-heldout-roll-weak"
$rec --episodes 16 --policy "$data/policies/$task-rl-160/policy.json" --noise 0.1 --seed 32 --out "$data/$task-heldout-roll-rl"

train=(train-mixed train-expert train-failed train-roll-weak train-roll-weak-n1 train-roll-weak-n3 train-roll-rl48 train-roll-rl160)
bundles=()
for part in "${train[@]}" heldout-rand heldout-roll-weak; do
  $sw dataset export --dataset "$data/$task-$part" --out "$data/bundles/$short-$part" --size 96 --labels truth --overwrite
done
for part in "${train[@]}"; do bundles+=(--bundle "$data/bundles/$short-$part"); done
$sw train "${bundles[@]}" --out "models/zoo/$task" --name "$task" --task "$task" --time-budget-min 26 --seed 0 --work-dir "$data/runs/$task" \
  --eval-bundle "$data/bundles/$short-heldout-rand" --eval-bundle "$data/bundles/$short-heldout-roll-weak"
# distill=1: models/zoo/<task>_fast, a depthwise-separable encoder trained on the model's features (a
# third of its CPU time per frame) with the model's own heads; the same held-out evaluation runs on
# both and scripts/compare-evals.ts sets every figure against the full model's (tolerance 0.01)
fast="models/zoo/${task}_fast"
if [ "$distill" = 1 ]; then
  $sw distill --teacher "models/zoo/$task" "${bundles[@]}" --out "$fast" --channels 32,96,128,128 --time-budget-min 24 --seed 0
fi

# evaluate PACKAGE OUT-PREFIX: the held-out sets through the engine; and what a robot without one
# camera gets with missingViews "fill" (the card's missing_views: a black frame; a card without
# missing_views refuses a fill, so those figures exist only for such a card)
has_fill=0
node -e "process.exit(JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).missing_views ? 0 : 1)" "models/zoo/$task/model.json" && has_fill=1
evaluate() {
  $sw eval --model "$1" --dataset "$data/$task-heldout-mixed" --dataset "$data/$task-heldout-failed" --task "$task" --out "$2"
  $sw eval --model "$1" --dataset "$data/$task-heldout-rand" --task "$task" --out "$2-rand"
  $sw eval --model "$1" --dataset "$data/$task-heldout-roll-weak" --task "$task" --out "$2-roll-weak"
  $sw eval --model "$1" --dataset "$data/$task-heldout-roll-rl" --task "$task" --out "$2-roll-rl"
  if [ "$has_fill" = 1 ]; then
    for view in front side wrist; do
      $sw eval --model "$1" --dataset "$data/$task-heldout-mixed" --dataset "$data/$task-heldout-failed" --task "$task" --fill-view "$view" --no-plots --out "$2-fill-$view"
    done
  fi
}
# store PACKAGE OUT-PREFIX [more --set ...]: the figures into the package's card
store() {
  local pkg=$1 e=$2
  shift 2
  local fill=()
  if [ "$has_fill" = 1 ]; then
    for view in front side wrist; do fill+=(--set "missing_${view}_black=$e-fill-$view/metrics.json"); done
  fi
  $sw model metrics --model "$pkg" \
    --set engine_eval="$e/metrics.json" --set engine_eval_randomized="$e-rand/metrics.json" \
    --set engine_eval_rollouts_weak_noise03="$e-roll-weak/metrics.json" --set engine_eval_rollouts_rl="$e-roll-rl/metrics.json" \
    "${fill[@]}" "$@"
}
evaluate "models/zoo/$task" "$data/eval/$task"
store "models/zoo/$task" "$data/eval/$task"
if [ "$distill" = 1 ]; then
  evaluate "$fast" "$data/eval/${task}_fast"
  store "$fast" "$data/eval/${task}_fast" --set "teacher_engine_eval=$data/eval/$task/metrics.json" \
    --set "teacher_engine_eval_rollouts_weak_noise03=$data/eval/$task-roll-weak/metrics.json" --set "teacher_engine_eval_rollouts_rl=$data/eval/$task-roll-rl/metrics.json"
  sets=()
  for part in "" -rand -roll-weak -roll-rl $( [ "$has_fill" = 1 ] && echo -fill-front -fill-side -fill-wrist ); do
    sets+=(--set "heldout$part=$data/eval/$task$part/metrics.json,$data/eval/${task}_fast$part/metrics.json")
  done
  npx tsx scripts/compare-evals.ts "${sets[@]}" | tee "$data/eval/${task}_fast-vs-$task.txt" || true
fi
