"""An SFT stage: parent checkpoint + reference chains of thought -> a new checkpoint directory.

Two stages use it: the tiny model's "instruct" stage (random weights -> partial competence on
both embedded tasks, as a real instruct model knows a little of both) and Vision-R1's cold start
(an instruct model -> long chains of thought; Vision-R1 Sec. 3.1). Data: each task's `coldstart`
split (disjoint from every train / val / test split by construction); the last `eval_size`
records of each task are held out for the stop rule.

A stage runs `phases` in order, each a mixture of tasks trained for `max_steps`, or until every
held-out accuracy in its optional `stop_at` is reached (checked every `eval_every` steps). Phases
let a slow task (geometry) get ahead before a fast one (counting) joins the mixture, so both end
partially learned. The tiny model's stages use fixed step counts: a stop rule turns tiny numeric
differences into a different step count, so a different start (issue 21).

Reproducible by construction on one machine: every stage trains on STAGE_THREADS torch threads
whatever the caller set (a thread count changes float summation order, and 1000 SFT steps amplify
that into other weights), and its output records a digest of its weights (`stage.json`). Another
CPU's kernels can still round differently, which is why the default start ships in the repo
(`stages/start.py`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

STAGE_KEYS = ("tasks", "seed", "size", "eval_size", "image_size", "styles", "lr", "schedule", "warmup_frac",
              "batch_size", "eval_every", "eval_max_new_tokens", "phases")
PHASE_KEYS = ("tasks", "max_steps", "stop_at", "eval_every")
STAGE_THREADS = 1   # fixed: a build must not depend on the caller's thread count


def check_spec(spec: dict, key: str) -> None:
    """Raise naming the key for any unknown or bad value of a stage spec."""
    from ..data.tasks import make_task
    from ..lit.sft import check_styles

    unknown = set(spec) - set(STAGE_KEYS)
    if unknown:
        raise ValueError(f"{key}: unknown key(s) {sorted(unknown)}; known: {STAGE_KEYS}")
    for name, options in spec["tasks"].items():
        make_task(name, **dict(options or {}))
    check_styles(spec["styles"], f"{key}.styles")
    for field in ("size", "eval_size", "batch_size", "eval_every", "eval_max_new_tokens"):
        if spec[field] < 1:
            raise ValueError(f"{key}.{field}={spec[field]} must be >= 1")
    if not spec["lr"] > 0:
        raise ValueError(f"{key}.lr={spec['lr']} must be > 0")
    if not spec["phases"]:
        raise ValueError(f"{key}.phases is empty")
    for i, phase in enumerate(spec["phases"]):
        where = f"{key}.phases[{i}]"
        if set(phase) - set(PHASE_KEYS):
            raise ValueError(f"{where}: unknown key(s) {sorted(set(phase) - set(PHASE_KEYS))}; known: {PHASE_KEYS}")
        missing = set(phase["tasks"]) - set(spec["tasks"])
        if missing or not phase["tasks"]:
            raise ValueError(f"{where}.tasks={phase['tasks']}: name tasks of {key}.tasks {list(spec['tasks'])}")
        for field in ("max_steps", "eval_every"):
            if phase.get(field, 1) < 1:
                raise ValueError(f"{where}.{field}={phase[field]} must be >= 1")
        for task, target in (phase.get("stop_at") or {}).items():
            if task not in phase["tasks"] or not 0 < target <= 1:
                raise ValueError(f"{where}.stop_at.{task}={target}: a task of this phase, target in (0, 1]")


class StopAtAccuracy(Callback):
    """Every `every` steps: greedy accuracy of each held-out task with a target; stop once all reach it."""

    def __init__(self, held_out: dict[str, list[dict]], targets: dict[str, float] | None, every: int, phase: int):
        self.held_out, self.targets, self.every, self.phase = held_out, dict(targets or {}), every, phase
        self.history: list[dict] = []

    def measure(self, module, step: int, tasks=None) -> dict:
        """{task: greedy accuracy} on the held-out records of `tasks` (default: all), logged to history."""
        from ..lit.evaluation import per_task

        records = [r for task in (tasks or self.held_out) for r in self.held_out[task]]
        batch, scores = module.greedy_scores(records)
        acc = {t: v["acc"].mean().item() for t, v in per_task(records, batch, scores).items()}
        row = {"phase": self.phase, "step": step, **{f"{t}/acc": a for t, a in acc.items()}}
        self.history.append(row)
        return acc

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.targets and step % self.every == 0:
            acc = self.measure(module, step, list(self.targets))
            if all(acc[t] >= target for t, target in self.targets.items()):
                trainer.should_stop = True


def run_sft_stage(parent: str, spec: dict, out_dir: str | Path, name: str) -> Path:
    """Train `parent` through `spec`'s phases on STAGE_THREADS threads; save model + processor + history
    (with the weights' digest) to `out_dir`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(STAGE_THREADS)
    try:
        return _run_phases(parent, spec, Path(out_dir), name)
    finally:
        torch.set_num_threads(threads)


def _run_phases(parent: str, spec: dict, out: Path, name: str) -> Path:
    from ..data.datamodule import SplitDataModule, build_split
    from ..lit.sft import SFTModule
    from ..models.loading import load_model
    from ..rewards import Reward
    from .digest import weights_digest

    L.seed_everything(spec["seed"], verbose=False)
    processor, policy = load_model(parent)
    train, held_out = {}, {}
    for task, options in spec["tasks"].items():
        records = build_split({task: options}, "coldstart", spec["size"] + spec["eval_size"], spec["seed"],
                              spec.get("image_size", 112))
        train[task], held_out[task] = records[:spec["size"]], records[spec["size"]:]
    optim = {"lr": spec["lr"], "schedule": spec.get("schedule", "constant"), "warmup_frac": spec.get("warmup_frac", 0.0)}
    history, started = [], time.time()
    for index, phase in enumerate(spec["phases"]):
        data = SplitDataModule({"coldstart": [r for t in phase["tasks"] for r in train[t]]}, seed=spec["seed"] + index)
        module = SFTModule(policy, processor, Reward(), optim=optim, steps=phase["max_steps"],
                           batch_size=spec["batch_size"], styles=spec["styles"],
                           eval_max_new_tokens=spec["eval_max_new_tokens"], split="coldstart")
        stop = StopAtAccuracy({t: held_out[t] for t in phase["tasks"]}, phase.get("stop_at"),
                              phase.get("eval_every", spec["eval_every"]), index)
        print(f"[vlmrl] {name} phase {index}: SFT on {'+'.join(phase['tasks'])} "
              f"(at most {phase['max_steps']} steps{', until ' + str(dict(phase['stop_at'])) if phase.get('stop_at') else ''})")
        trainer = L.Trainer(max_steps=phase["max_steps"], limit_train_batches=phase["max_steps"], max_epochs=1,
                            logger=False, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                            accelerator="auto", devices=1, enable_model_summary=False,
                            callbacks=[stop])
        trainer.fit(module, datamodule=data)
        final = stop.measure(module, trainer.global_step)  # every held-out task, whether or not it had a target
        unmet = {t: v for t, v in (phase.get("stop_at") or {}).items() if final[t] < v}
        note = f"; warning: max_steps reached below target {unmet}" if unmet else ""
        print(f"[vlmrl] {name} phase {index} done at step {trainer.global_step}: held-out accuracy "
              f"{', '.join(f'{t} {a:.3f}' for t, a in final.items())}{note}")
        history += stop.history
    policy.save_pretrained(out)
    processor.save_pretrained(out)
    summary = {"stage": name, "parent": parent, "spec": spec, "history": history, "threads": STAGE_THREADS,
               "weights_sha256": weights_digest(out), "wall_time_s": round(time.time() - started, 1)}
    (out / "stage.json").write_text(json.dumps(summary, indent=1))
    return out
