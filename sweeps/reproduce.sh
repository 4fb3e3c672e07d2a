#!/usr/bin/env bash
# Every experiment of both papers at one scale, their evaluations, then every table and figure.
#
#   bash sweeps/reproduce.sh [--scale smoke|tiny] [--seeds 0,1,2] [--parallel 2] [--out DIR] [--report DIR] [-- overrides]
#
#   --scale smoke   a few steps per run on a handful of records (+scale=smoke): proves the pipeline, CI runs it
#   --scale tiny    the embedded reproduction (default): the tiny Qwen2-VL at conf/model/tiny.yaml's scale
#   --seeds         comma-separated training seeds (tiny: 0,1,2, so every cell is a mean of 3 and each claim
#                   of sweeps/claims.yaml can be decided; smoke: 0); the report shows mean ± std and intervals
#   --out           where run dirs go (default repro/<scale>)
#   --report        where tables and figures go (default docs/results/<scale>)
#   --parallel N    run N training streams at once, each on nproc / N threads (tiny: 2, smoke: 1), logs in
#                   <out>/stream<i>.log
#   -- ...          any further overrides go to every train.py / evaluate.py call (e.g. model=qwen2_vl_2b)
#
# Steps: the training sweeps of sweeps/othink_mr1/ and sweeps/vision_r1/, one multirun per sweep and
# seed (python train.py -m +sweeps=<sweep> seed=<s>, into <out>/<sweep>/seed<s>/), shared among the
# streams longest first; the evaluations that have no RL run (Table 1's base column, Vision-R1's
# cold-start-only row); the cross-task evaluation of every trained run (OThink-MR1 Fig. 7 and the
# KL runs beside Fig. 6; Vision-R1's averages over tasks); then python -m vlmrl.report (tables, figures,
# the claims table). Rerunning after a crash skips every sweep, seed and evaluation that finished (one
# cut off midway runs again whole).
set -euo pipefail
cd "$(dirname "$0")/.."

scale=tiny seeds="" out="" report="" parallel="" extra=() real=()   # real: a model= override other than tiny (then no sweeps/tiny/)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --) shift; extra+=("$@"); real=($(printf '%s\n' "$@" | grep -E '^model=' | grep -v '^model=tiny$' || true)); break ;;
    *) echo "reproduce.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case "$scale" in
  smoke) extra=(+scale=smoke "${extra[@]}"); seeds="${seeds:-0}" parallel="${parallel:-1}" ;;
  tiny) seeds="${seeds:-0,1,2}" parallel="${parallel:-2}" ;;
  *) echo "reproduce.sh: --scale $scale: choose smoke or tiny" >&2; exit 2 ;;
esac
out="${out:-repro/$scale}" report="${report:-docs/results/$scale}"
started=$(date +%s)
log() { echo "[reproduce $(( $(date +%s) - started ))s] $*"; }

# One training sweep at one seed into $out/<sweep>/seed<s>/<job>/; skipped when it finished before.
# On the tiny model (scales smoke and tiny) a sweep with a file under sweeps/tiny/ runs that one: the
# same runs on task or start options where the knob it ablates can matter (each file says why).
sweep() {
  local name="$1" seed="$2" dir="$out/$1/seed$2" jobs file="$1"
  [[ -f "sweeps/tiny/$1.yaml" && ${#real[@]} -eq 0 ]] && file="tiny/$1"
  if [[ -f "$dir/.done" ]]; then log "$name seed $seed: done before, skipped"; return; fi
  log "$name: python train.py -m +sweeps=$file seed=$seed ${extra[*]}"
  # set -e does not reach inside a function called from `||` (the streams): check the status here, so a
  # failed or killed multirun is never marked done
  python train.py -m "+sweeps=$file" "seed=$seed" "${extra[@]}" "hydra.sweep.dir=$dir" \
    || { log "$name seed $seed: train.py failed, not marked done"; return 1; }
  jobs=$(find "$dir" -mindepth 2 -maxdepth 2 -name results.json | wc -l)
  log "$name seed $seed: $jobs run(s) finished"
  touch "$dir/.done"
}

# Greedy evaluation (eval=cross_task: both tasks' test splits) of the untrained start of an experiment.
eval_base() {
  local experiment="$1" dir="$out/$1"
  if [[ -f "$dir/eval/cross_task.json" ]]; then log "$experiment (base eval): done before, skipped"; return; fi
  log "$experiment: python evaluate.py run=base +experiments=$experiment"
  python evaluate.py run=base "+experiments=$experiment" "out=$dir" "${extra[@]}"
}

# Cross-task evaluation of every run of a sweep, in one process (a Hydra multirun over run dirs).
eval_runs() {
  local name="$1" runs=()
  for d in "$out/$name"/seed*/*/; do
    [[ -f "$d/results.json" && ! -f "$d/eval/cross_task.json" ]] && runs+=("'${d%/}'")
  done
  if [[ ${#runs[@]} -eq 0 ]]; then log "$name: nothing to evaluate"; return; fi
  log "$name: python evaluate.py -m run=<${#runs[@]} run dirs> eval=cross_task"
  python evaluate.py -m "run=$(IFS=,; echo "${runs[*]}")" eval=cross_task "${extra[@]}" \
    "hydra.sweep.dir=$out/.eval_sweep"
}

log "scale=$scale seeds=$seeds runs -> $out, report -> $report"
python cold_start.py "${extra[@]}"                           # the shared instruct start, built once
sweeps=(othink_mr1/table1 vision_r1/ablation othink_mr1/fig6_constant_beta othink_mr1/fig4_format_weight
        vision_r1/ptst_variants othink_mr1/fig6_schedules)   # longest first, so parallel streams end together
IFS=, read -ra seed_list <<< "$seeds"
units=()                                                     # "<sweep> <seed>", longest sweeps first
for s in "${sweeps[@]}"; do for k in "${seed_list[@]}"; do units+=("$s $k"); done; done
if [[ "$parallel" -le 1 ]]; then
  for u in "${units[@]}"; do sweep $u; done
else
  python cold_start.py +experiments=vision_r1/ptst "${extra[@]}"   # the shared cold starts, before streams race for them
  [[ ${#real[@]} -eq 0 ]] && python cold_start.py cold_start=terse "${extra[@]}"
  threads=$(( $(nproc) / parallel )); threads=$(( threads > 0 ? threads : 1 ))
  mkdir -p "$out"
  pids=()
  for (( i = 0; i < parallel; i++ )); do
    (
      export OMP_NUM_THREADS=$threads
      for (( j = i; j < ${#units[@]}; j += parallel )); do
        sweep ${units[$j]} >> "$out/stream$i.log" 2>&1 || { log "${units[$j]} failed: $out/stream$i.log"; exit 1; }
      done
    ) &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [[ $failed -eq 0 ]] || { log "a training stream failed (logs: $out/stream*.log)"; exit 1; }
fi
eval_base othink_mr1/table1_base
eval_base vision_r1/cold_start_only
for s in othink_mr1/table1 othink_mr1/fig6_constant_beta othink_mr1/fig6_schedules vision_r1/ablation vision_r1/ptst_variants; do
  eval_runs "$s"                                             # fig6: cross-task accuracy over beta (issue 23)
done
python -m vlmrl.report "$out" --out "$report"
log "all done in $(( $(date +%s) - started )) s"
