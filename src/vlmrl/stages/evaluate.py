"""Evaluation as a stage: a checkpoint -> greedy accuracy, format rate and mean completion length on
a list of tasks, written as `eval/<name>.json` and printed as a table.

What `run=` may name:
  base                      the start checkpoint of the composed config (model + cold start), no RL
  <run dir>                 a train.py run: its `final/` checkpoint (else checkpoints/last.ckpt), and
                            its own config for model settings, the task it trained on and its study
  <dir with config.json>    any HF checkpoint directory
  <file.ckpt>               a Lightning checkpoint inside a run dir (its policy weights on the run's start)
"""
from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..lit.evaluation import METRICS, greedy_scores, per_task
from ..models.loading import load_model
from .start import start_checkpoint


def _run_dir_of(path: Path) -> Path | None:
    for candidate in (path, path.parent.parent):
        if (candidate / "config_resolved.yaml").is_file():
            return candidate
    return None


def resolve(cfg: DictConfig) -> dict:
    """{checkpoint, ckpt_file, run_cfg, run_dir} for `cfg.run`; raises naming what was looked for."""
    if cfg.run == "base":
        return {"checkpoint": start_checkpoint(cfg), "ckpt_file": None, "run_cfg": cfg, "run_dir": None}
    path = Path(str(cfg.run)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"run={cfg.run}: no such run dir, checkpoint dir or .ckpt file")
    run_dir = _run_dir_of(path)
    run_cfg = OmegaConf.load(run_dir / "config_resolved.yaml") if run_dir else None
    if path.is_file():
        if run_dir is None:
            raise FileNotFoundError(f"run={path}: a .ckpt needs its run dir's config_resolved.yaml two levels up")
        return {"checkpoint": start_checkpoint(run_cfg), "ckpt_file": path, "run_cfg": run_cfg, "run_dir": run_dir}
    if run_dir == path:
        final, last = path / "final", path / "checkpoints" / "last.ckpt"
        if (final / "config.json").is_file():
            return {"checkpoint": str(final), "ckpt_file": None, "run_cfg": run_cfg, "run_dir": path}
        if last.is_file():
            return {"checkpoint": start_checkpoint(run_cfg), "ckpt_file": last, "run_cfg": run_cfg, "run_dir": path}
        raise FileNotFoundError(f"run={path}: neither {final}/config.json nor {last} exists (did the run finish?)")
    if (path / "config.json").is_file():
        return {"checkpoint": str(path), "ckpt_file": None, "run_cfg": cfg, "run_dir": None}
    raise FileNotFoundError(f"run={path}: not a run dir (config_resolved.yaml), an HF checkpoint (config.json) or a .ckpt")


def load_policy(source: dict, model_cfg: DictConfig):
    processor, policy = load_model(source["checkpoint"], dtype=model_cfg.dtype, trainable=False,
                                   attn_implementation=model_cfg.attn_implementation,
                                   processor_kwargs=OmegaConf.to_container(model_cfg.processor_kwargs))
    if source["ckpt_file"] is not None:
        import torch

        state = torch.load(source["ckpt_file"], map_location="cpu", weights_only=False)["state_dict"]
        policy.load_state_dict({k.removeprefix("policy."): v for k, v in state.items() if k.startswith("policy.")})
    return processor, policy


def task_data(cfg: DictConfig, run_cfg: DictConfig) -> dict[str, DictConfig]:
    """{name: data config} to evaluate: the eval config's tasks, or the run's own data."""
    if cfg.eval.tasks:
        return dict(cfg.eval.tasks)
    return {run_cfg.data.name: run_cfg.data}


def evaluate(cfg: DictConfig) -> dict:
    source = resolve(cfg)
    run_cfg = source["run_cfg"]
    processor, policy = load_policy(source, run_cfg.model)
    trained_on = None if source["run_dir"] is None else run_cfg.data.name
    trained_tasks = [] if source["run_dir"] is None else list(run_cfg.data.module.tasks)  # a mixture trains several
    results = {}
    for name, data_cfg in task_data(cfg, run_cfg).items():
        records = instantiate(data_cfg.module).split(cfg.eval.split)
        rows = {k: [] for k in METRICS}
        for i in range(0, len(records), cfg.eval.batch_size):
            chunk = records[i:i + cfg.eval.batch_size]
            batch, scores = greedy_scores(policy, processor, chunk, run_cfg.model.eval_max_new_tokens)
            for values in per_task(chunk, batch, scores).values():
                for key in METRICS:
                    rows[key] += values[key].tolist()
        results[name] = {**{k: sum(v) / len(v) for k, v in rows.items()}, "n": len(records)}
    study = cfg.get("study") or (run_cfg.get("study") if source["run_dir"] is not None else None)
    report = {"checkpoint": str(source["ckpt_file"] or source["checkpoint"]), "trained_on": trained_on,
              "trained_tasks": trained_tasks,
              "eval": cfg.eval.name, "split": cfg.eval.split,
              "study": OmegaConf.to_container(study) if study is not None else None, "results": results}
    out = Path(cfg.out) if cfg.out else source["run_dir"] or Path("outputs/eval") / Path(source["checkpoint"]).name
    (out / "eval").mkdir(parents=True, exist_ok=True)
    path = out / "eval" / f"{cfg.eval.name}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return {"path": path, **report}


def format_table(report: dict) -> str:
    lines = [f"{'task':<10} {'n':>5} {'acc':>7} {'format':>7} {'length':>7}"]
    for task, r in report["results"].items():
        mark = "" if report["trained_on"] is None else ("  same task" if task in report["trained_tasks"] else "  cross task")
        lines.append(f"{task:<10} {r['n']:>5} {r['acc']:>7.3f} {r['format']:>7.3f} {r['completion_len']:>7.1f}{mark}")
    return "\n".join(lines)
