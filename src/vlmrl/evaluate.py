"""Evaluation as an entry of its own: a checkpoint -> greedy accuracy, format rate and mean completion length on
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

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .assemble import create
from .lit.greedy import (METRICS, Reliance, greedy_scores, image_keys, per_record, reliance_summary,
                             replaced_accuracy, shuffle_partners)
from .models.loading import load_model
from .data.real import RecordTable
from .schema import MissingInput
from .starts.start import start_checkpoint


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
        raise MissingInput(f"run={cfg.run}: no such run dir, checkpoint dir or .ckpt file")
    run_dir = _run_dir_of(path)
    run_cfg = OmegaConf.load(run_dir / "config_resolved.yaml") if run_dir else None
    if path.is_file():
        if run_dir is None:
            raise MissingInput(f"run={path}: a .ckpt needs its run dir's config_resolved.yaml two levels up")
        return {"checkpoint": start_checkpoint(run_cfg), "ckpt_file": path, "run_cfg": run_cfg, "run_dir": run_dir}
    if run_dir == path:
        final, last = path / "final", path / "checkpoints" / "last.ckpt"
        if (final / "config.json").is_file():
            return {"checkpoint": str(final), "ckpt_file": None, "run_cfg": run_cfg, "run_dir": path}
        if last.is_file():
            return {"checkpoint": start_checkpoint(run_cfg), "ckpt_file": last, "run_cfg": run_cfg, "run_dir": path}
        raise MissingInput(f"run={path}: neither {final}/config.json nor {last} exists (did the run finish?)")
    if (path / "config.json").is_file():
        return {"checkpoint": str(path), "ckpt_file": None, "run_cfg": cfg, "run_dir": None}
    raise MissingInput(f"run={path}: not a run dir (config_resolved.yaml), an HF checkpoint (config.json) or a .ckpt")


def load_policy(source: dict, model_cfg: DictConfig):
    processor, policy = load_model(source["checkpoint"], dtype=model_cfg.dtype, trainable=False,
                                   attn_implementation=model_cfg.attn_implementation,
                                   processor_kwargs=OmegaConf.to_container(model_cfg.processor_kwargs))
    if source["ckpt_file"] is not None:
        import torch

        state = torch.load(source["ckpt_file"], map_location="cpu", weights_only=False)["state_dict"]
        policy.load_state_dict({k.removeprefix("policy."): v for k, v in state.items() if k.startswith("policy.")})
    return processor, policy


def eval_sets(cfg: DictConfig, run_cfg: DictConfig) -> dict[str, dict]:
    """{name: {"records", "max_new_tokens", "verifier"}}: the eval config's embedded tasks and
    benchmarks, or (when it names neither) the run's own data."""
    sets = {}
    tasks = dict(cfg.eval.tasks) if cfg.eval.tasks or cfg.eval.get("benchmarks") else {run_cfg.data.name: run_cfg.data}
    for name, data_cfg in tasks.items():
        sets[name] = {"records": create(data_cfg.module).split(cfg.eval.split),
                      "max_new_tokens": cfg.eval.get("max_new_tokens") or run_cfg.model.eval_max_new_tokens}
    for name, spec in (cfg.eval.get("benchmarks") or {}).items():
        spec = OmegaConf.to_container(spec, resolve=True)
        table = RecordTable(spec, cfg.data_root, where=f"eval.benchmarks.{name}")
        print(f"[vlmrl] {name}: {table.summary()}")
        for note in (spec.get("note"), VERIFIER_NOTES.get(spec["verifier"])):
            if note:
                print(f"[vlmrl] {name}: {note}")
        sets[name] = {"records": table, "verifier": spec["verifier"],
                      "max_new_tokens": cfg.eval.get("max_new_tokens") or spec.get("max_new_tokens")
                      or run_cfg.model.eval_max_new_tokens}
    return sets


RELIANCE_DEFINITION = ("reliance_<v> = mean over the items where variant v is defined of (acc - acc_<v>), each item "
                       "scored with its own image and with it replaced (blank: a blank image of the same size; "
                       "shuffled: another item's image, same task); _se: its standard error (docs/visual_reliance.md)")
VERIFIER_NOTES = {
    "math_r1v": "scored with R1-V's own GeoQA scorer (the whole output parsed, verify(prediction, gold), no "
                "normalisation): comparable with R1-V / OThink-MR1 numbers, not a correct grader (√ and π golds)",
}


def make_judge(cfg: DictConfig):
    judge = cfg.eval.get("judge")
    if not judge or not judge.get("base_url"):
        return None
    from .scoring.judge import Judge

    return Judge(**OmegaConf.to_container(judge, resolve=True))


def breakdown(metas: list[dict], accs: list[float], replaced: dict[str, list] | None = None) -> dict:
    """{field: {value: {"acc", "n", and per replaced-image variant v: "acc_<v>", "reliance_<v>", ...}}} over each
    record's meta["categories"] (a list value counts once per item, as MathVista's per-skill accuracy does);
    `replaced`: {variant: [accuracy of each item with its image replaced, None where undefined]}."""
    members: dict = {}
    for i, meta in enumerate(metas):
        for field, values in meta.get("categories", {}).items():
            for value in values if isinstance(values, list) else [values]:
                members.setdefault(field, {}).setdefault(str(value), []).append(i)
    replaced = replaced or {}

    def cell(rows: list[int]) -> dict:
        acc = [accs[i] for i in rows]
        return {"acc": sum(acc) / len(acc), "n": len(acc),
                **(reliance_summary(acc, {v: [r[i] for i in rows] for v, r in replaced.items()}) if replaced else {})}

    return {f: {v: cell(rows) for v, rows in sorted(values.items())} for f, values in members.items()}


def score_set(policy, processor, records, batch_size: int, max_new_tokens: int, reward, judge=None,
              reliance: Reliance | None = None) -> dict:
    """Greedy completions of `records` scored by each record's verifier through `reward` (and the judge, if any);
    with `reliance`, each item scored again with its images replaced (lit/greedy.py; rule-based scores only,
    the judge is not asked again)."""
    rows = {k: [] for k in METRICS}
    judged, kept, ids, keys = [], [], [], []
    variants = list(reliance.variants) if reliance else []
    replaced = {v: [] for v in variants}

    def accuracy(chunk: list[dict]) -> torch.Tensor:
        return greedy_scores(policy, processor, chunk, max_new_tokens, reward)[1]["accuracy"]

    for i in range(0, len(records), batch_size):
        chunk = records[i:i + batch_size]
        batch, scores = greedy_scores(policy, processor, chunk, max_new_tokens, reward)
        for key, values in per_record(batch, scores).items():
            rows[key] += values.tolist()
        kept += [r.get("meta") or {} for r in chunk]  # not the records: their decoded images add up
        ids += [r.get("id", str(i + j)) for j, r in enumerate(chunk)]
        keys += reliance.selected(image_keys(chunk), start=i) if reliance else []
        if "blank" in variants:
            replaced["blank"] += replaced_accuracy(accuracy, chunk, reliance.replacements(chunk, "blank", keys[i:]))
        if judge is not None:
            from .scoring import judge_score

            judged += [judge_score(c, r, judge) for c, r in zip(batch.completions, chunk)]
    if "shuffled" in variants:   # a second pass: an item's partner may sit in any batch
        partners = shuffle_partners(keys, reliance.seed)
        for i in range(0, len(records), batch_size):
            chunk = records[i:i + batch_size]
            replaced["shuffled"] += replaced_accuracy(accuracy, chunk, reliance.replacements(
                chunk, "shuffled", keys[i:], partners[i:i + batch_size], source=records))
    result = {**{k: sum(v) / len(v) for k, v in rows.items()}, "n": len(rows["acc"])}
    if judge is not None and any(j is not None for j in judged):
        scored = [j for j in judged if j is not None]
        result["acc_judge"] = sum(scored) / len(scored)
    if replaced:
        result.update(reliance_summary(rows["acc"], replaced))
    categories = breakdown(kept, rows["acc"], replaced)
    if categories:
        result["breakdown"] = categories
    # each item's outcome: the report pairs runs by item (acc_<v>: None where the variant is undefined)
    result["items"] = {"id": ids, **rows, **{f"acc_{v}": values for v, values in replaced.items()}}
    return result


def evaluate(cfg: DictConfig) -> dict:
    from .infra.perf import use_threads

    use_threads(cfg.get("threads"))
    reliance = create(cfg.eval.reliance)   # a bad value fails here, before the model loads
    source = resolve(cfg)
    run_cfg = source["run_cfg"]
    processor, policy = load_policy(source, run_cfg.model)
    trained_on = None if source["run_dir"] is None else run_cfg.data.name
    # a mixture trains several tasks
    trained_tasks = [] if source["run_dir"] is None else instantiate(run_cfg.data.module).train_tasks
    judge = make_judge(cfg)
    reward = instantiate(cfg.reward)   # accuracy and format by each record's verifier; the weights do not enter them
    results = {}
    for name, spec in eval_sets(cfg, run_cfg).items():
        results[name] = score_set(policy, processor, spec["records"], cfg.eval.batch_size, spec["max_new_tokens"],
                                  reward, judge, reliance)
        results[name].update(max_new_tokens=spec["max_new_tokens"], **({"verifier": spec["verifier"]}
                                                                        if "verifier" in spec else {}))
        if spec.get("verifier") in VERIFIER_NOTES:
            results[name]["note"] = VERIFIER_NOTES[spec["verifier"]]
    study = cfg.get("study") or (run_cfg.get("study") if source["run_dir"] is not None else None)
    report = {"checkpoint": str(source["ckpt_file"] or source["checkpoint"]), "trained_on": trained_on,
              "trained_tasks": trained_tasks,
              "eval": cfg.eval.name, "split": cfg.eval.split,
              "judge": cfg.eval.judge.model if judge else None,
              "reliance": {"variants": reliance.variants, "items": reliance.items, "seed": reliance.seed,
                           "fill": reliance.fill, "definition": RELIANCE_DEFINITION} if reliance else None,
              "study": OmegaConf.to_container(study) if study is not None else None, "results": results}
    out = Path(cfg.out) if cfg.out else source["run_dir"] or Path("outputs/eval") / Path(source["checkpoint"]).name
    (out / "eval").mkdir(parents=True, exist_ok=True)
    path = out / "eval" / f"{cfg.eval.name}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return {"path": path, **report}


def _num(value, width: int = 7) -> str:
    return f"{value:>{width}.3f}" if value is not None else f"{'-':>{width}}"


def format_table(report: dict, breakdowns: bool = True) -> str:
    """Accuracy, format rate and length per task / benchmark; judged accuracy where a judge ran; the
    replaced-image accuracies and visual reliance where scored; then each benchmark's per-category accuracy
    (indented) and, with reliance, a per-category reliance table."""
    results = report["results"]
    width = max([10] + [len(t) for t in results])
    judged = any("acc_judge" in r for r in results.values())
    variants = [v for v in ("blank", "shuffled") if any(f"acc_{v}" in r for r in results.values())]
    rel_head = "".join(f" {v:>8}" for v in variants) + "".join(f" {'rel.' + v:>12}" for v in variants)
    lines = [f"{'task':<{width}} {'n':>5} {'acc':>7} {'format':>7} {'length':>7}" + ("   judge" if judged else "")
             + rel_head]
    for task, r in results.items():
        mark = "" if report["trained_on"] is None else ("  same task" if task in report["trained_tasks"] else "  cross task")
        judge = (f" {r['acc_judge']:>7.3f}" if "acc_judge" in r else f" {'-':>7}") if judged else ""
        rel = "".join(f" {_num(r.get(f'acc_{v}'), 8)}" for v in variants) + "".join(
            f" {_num(r.get(f'reliance_{v}'), 12)}" for v in variants)
        lines.append(f"{task:<{width}} {r['n']:>5} {r['acc']:>7.3f} {r['format']:>7.3f} {r['completion_len']:>7.1f}"
                     f"{judge}{rel}{mark}")
    for task, r in results.items():
        for field, values in (r.get("breakdown") or {}).items() if breakdowns else ():
            cells = ", ".join(f"{v} {c['acc']:.3f} (n={c['n']})" for v, c in values.items())
            lines.append(f"  {task} by {field}: {cells}")
    if variants and breakdowns:
        lines += reliance_lines(report, variants)
    return "\n".join(lines)


def reliance_lines(report: dict, variants: list[str]) -> list[str]:
    """Per task and category: n, acc, each replaced-image accuracy and reliance (acc minus it)."""
    spec = report.get("reliance") or {}
    what = {"blank": f"blank = every image a blank {spec.get('fill', 'white')} one of its size",
            "shuffled": f"shuffled = the image of another item of its task (seed {spec.get('seed', 0)})"}
    rows = []
    for task, r in report["results"].items():
        rows.append((task, "all", r))
        for field, values in (r.get("breakdown") or {}).items():
            rows += [(task, f"{field}={value}", cell) for value, cell in values.items()]
    width = max(len(t) for t, _, _ in rows)
    cat = max([8] + [len(c) for _, c, _ in rows])
    lines = [f"visual reliance, rel.<v> = acc - acc with the image replaced ({'; '.join(what[v] for v in variants)}):",
             f"  {'task':<{width}} {'category':<{cat}} {'n':>5} {'acc':>7}" + "".join(f" {v:>8}" for v in variants)
             + "".join(f" {'rel.' + v:>12}" for v in variants)]
    for task, category, c in rows:
        lines.append(f"  {task:<{width}} {category:<{cat}} {c['n']:>5} {c['acc']:>7.3f}"
                     + "".join(f" {_num(c.get(f'acc_{v}'), 8)}" for v in variants)
                     + "".join(f" {_num(c.get(f'reliance_{v}'), 12)}" for v in variants))
    return lines
