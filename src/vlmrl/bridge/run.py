"""bridge.py's job: validate, read the items, resolve the models, run the passes, report.

Order matters for failing early: the config is checked first, then every item is read (a bad row of a
real dataset fails here), and only then is a start checkpoint built or a model loaded.
"""
from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..infra.hub import require_model
from .backends import Sampling
from .config import SLOTS, bridge_config, check
from .inputs import read_items
from .pipeline import GENERATION_PASSES, PASSES, FilterSpec, PassSpec, run_pipeline


def pass_specs(cfg: DictConfig) -> dict[str, PassSpec]:
    specs = {}
    for name in GENERATION_PASSES:
        s = cfg.passes[name]
        specs[name] = PassSpec(name, s.model, s.prompt, Sampling(s.max_new_tokens, float(s.temperature), float(s.top_p)),
                               s.drop_truncated)
    return specs


def resolve_models(cfg: DictConfig, backends: dict) -> dict:
    """Local backends without a model get the composed config's start checkpoint (the tiny model: built
    and cached on first use), those with one must have it at hand (`infra.hub.require_model`); slots with
    the same config share one backend (one model in memory)."""
    start = None
    for slot, backend in backends.items():
        if getattr(backend, "model", "") is None:
            if start is None:
                from ..starts.start import start_checkpoint

                start = start_checkpoint(cfg)
            backend.model = start
        elif not hasattr(backend, "base_url"):   # a local backend loads its model; a served one is asked by name
            require_model(str(backend.model), f"{slot}.model")
    slots = list(backends)
    for i, slot in enumerate(slots):
        for earlier in slots[:i]:
            if OmegaConf.to_container(cfg[slot], resolve=True) == OmegaConf.to_container(cfg[earlier], resolve=True):
                backends[slot] = backends[earlier]
                break
    return backends


def format_report(summary: dict) -> str:
    lines = [f"  {'pass':<12} {'in':>6} {'out':>6} {'yield':>6}  dropped"]
    for name in PASSES:
        row = summary["passes"].get(name)
        if row is None:
            continue
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(row["dropped"].items(), key=lambda kv: -kv[1]))
        ratio = f"{row['yield']:.3f}" if row["yield"] is not None else "-"
        lines.append(f"  {name:<12} {row['in']:>6} {row['out']:>6} {ratio:>6}  {dropped or '-'}")
    return "\n".join(lines)


def run_bridge(cfg: DictConfig, log=print) -> dict:
    backends = check(cfg)
    items, where = read_items(cfg)
    log(f"[vlmrl] bridge input: {len(items)} items of {where}")
    backends = resolve_models(cfg, backends)
    for slot in SLOTS:
        if slot in backends:
            log(f"[vlmrl] bridge {slot}: {backends[slot].name}")
    out = Path(cfg.out)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    summary = run_pipeline(items, pass_specs(cfg), backends, FilterSpec(cfg.filter.answer_format,
                                                                        cfg.filter.check_reasoning_result),
                           cfg.format.template, out, cfg.seed, log,
                           about={"input": where, "out": str(out), "started": started, "config": bridge_config(cfg)})
    yield_ = f"{summary['yield']:.3f}" if summary["yield"] is not None else "-"
    log(f"[vlmrl] bridge: {summary['items_in']} items -> {summary['kept']} kept (yield {yield_}) in "
        f"{summary['time_s']:.1f} s, {summary['tokens_generated']} tokens generated")
    log(format_report(summary))
    log(f"[vlmrl] wrote {out / 'records.jsonl'} ({summary['kept']} records), {out / 'summary.json'}")
    return summary
