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
#                   <out>/stream<i>.log; the evaluations run on N streams too (<out>/eval<i>.log)
#   -- ...          any further overrides go to every train.py / evaluate.py call (e.g. model=qwen2_vl_2b)
#
# Steps: the training sweeps of sweeps/othink_mr1/ and sweeps/vision_r1/, one multirun per sweep and
# seed (python train.py -m +sweeps=<sweep> seed=<s> data_seed=<s>: each seed its own sampling and data
# order, into <out>/<sweep>/seed<s>/), shared among the
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
  log "$name: python train.py -m +sweeps=$file seed=$seed data_seed=$seed ${extra[*]}"
  # set -e does not reach inside a function called from `||` (the streams): check the status here, so a
  # failed or killed multirun is never marked done
  python train.py -m "+sweeps=$file" "seed=$seed" "data_seed=$seed" "${extra[@]}" "hydra.sweep.dir=$dir" \
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

# Cross-task evaluation of every trained run not evaluated before, over the streams: stream i takes every
# parallel-th run, in one process (a Hydra multirun over run dirs) on nproc / parallel threads.
eval_runs() {
  local runs=() name d i
  for name in "$@"; do
    for d in "$out/$name"/seed*/*/; do
      [[ -f "$d/results.json" && ! -f "$d/eval/cross_task.json" ]] && runs+=("'${d%/}'")
    done
  done
  if [[ ${#runs[@]} -eq 0 ]]; then log "cross-task evaluation: nothing to evaluate"; return; fi
  log "cross-task evaluation of ${#runs[@]} run(s): python evaluate.py -m run=<run dirs> eval=cross_task, $parallel stream(s)"
  local pids=() failed=0
  for (( i = 0; i < parallel; i++ )); do
    local mine=()
    for (( j = i; j < ${#runs[@]}; j += parallel )); do mine+=("${runs[$j]}"); done
    [[ ${#mine[@]} -eq 0 ]] && continue
    OMP_NUM_THREADS=$threads python evaluate.py -m "run=$(IFS=,; echo "${mine[*]}")" eval=cross_task "${extra[@]}" \
      "hydra.sweep.dir=$out/.eval_sweep$i" >> "$out/eval$i.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [[ $failed -eq 0 ]] || { log "a cross-task evaluation failed (logs: $out/eval*.log)"; exit 1; }
}

log "scale=$scale seeds=$seeds runs -> $out, report -> $report"
python cold_start.py "${extra[@]}"                           # the shared instruct start, built once
# Longest first by a unit's (sweep x seed) cost in the 2026-12-03 tiny reproduction, so the streams end together.
sweeps=(othink_mr1/fig6_constant_beta othink_mr1/fig4_format_weight vision_r1/ptst_variants othink_mr1/table1
        vision_r1/ablation othink_mr1/fig6_schedules)
IFS=, read -ra seed_list <<< "$seeds"
threads=$(( $(nproc) / parallel )); threads=$(( threads > 0 ? threads : 1 ))
units=()                                                     # "<sweep> <seed>", longest sweeps first
for s in "${sweeps[@]}"; do for k in "${seed_list[@]}"; do units+=("$s $k"); done; done
if [[ "$parallel" -le 1 ]]; then
  for u in "${units[@]}"; do sweep $u; done
else
  # the shared cold starts, before the streams race for them: one build per stream (a build runs on one thread)
  builds=(+experiments=vision_r1/ptst)
  [[ ${#real[@]} -eq 0 ]] && builds+=(cold_start=terse)
  pids=()
  for b in "${builds[@]}"; do OMP_NUM_THREADS=$threads python cold_start.py "$b" "${extra[@]}" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || { log "a cold-start build failed"; exit 1; }; done
  # A work queue: each stream takes the next unit no stream has claimed (mkdir is atomic), so a stream that
  # finishes early takes more units instead of idling.
  claims="$out/.claims"; rm -rf "$claims"; mkdir -p "$claims"
  pids=()
  for (( i = 0; i < parallel; i++ )); do
    (
      export OMP_NUM_THREADS=$threads
      for u in "${units[@]}"; do
        mkdir "$claims/${u//[\/ ]/_}" 2>/dev/null || continue
        sweep $u >> "$out/stream$i.log" 2>&1 || { log "$u failed: $out/stream$i.log"; exit 1; }
      done
    ) &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [[ $failed -eq 0 ]] || { log "a training stream failed (logs: $out/stream*.log)"; exit 1; }
fi
bases=(othink_mr1/table1_base vision_r1/cold_start_only)    # the untrained starts: one process each, on the streams
pids=()
for b in "${bases[@]}"; do
  if [[ "$parallel" -le 1 ]]; then eval_base "$b"; else OMP_NUM_THREADS=$threads eval_base "$b" & pids+=($!); fi
done
for pid in "${pids[@]}"; do wait "$pid" || { log "a base evaluation failed"; exit 1; }; done
eval_runs othink_mr1/table1 othink_mr1/fig6_constant_beta othink_mr1/fig6_schedules vision_r1/ablation \
  vision_r1/ptst_variants                                    # fig6: cross-task accuracy over beta (issue 23)
python -m vlmrl.report "$out" --out "$report"
log "all done in $(( $(date +%s) - started )) s"
