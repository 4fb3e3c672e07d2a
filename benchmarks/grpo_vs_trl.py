"""Our GRPO step against TRL's GRPOTrainer, side by side in one process, on the same settings.

    pip install -r requirements-bench.txt           # TRL, pinned (the benchmark's only extra dependency)
    python benchmarks/grpo_vs_trl.py                # the grid below; ~15 min on 2 CPU cores
    python benchmarks/grpo_vs_trl.py --cells 112x8x32 --steps 3 --warmup 1   # one cell, quick

For every cell (image px x completions per prompt G x max_new_tokens) both trainers start from the
same checkpoint (the cached tiny instruct model, or `--model PATH`), see the same prompts in the same
order (TRL's dataset is our step batches laid end to end, unshuffled), and share B, G,
max_new_tokens, temperature, top-p / top-k, beta, learning rate (constant), clip epsilon, mu, loss
aggregation (token mean per completion, then mean: TRL's loss_type="grpo"), group-std advantages,
micro-batch (the whole step in one forward), precision (fp32) and torch threads. These are asserted
from the live objects before timing, not assumed; after timing, both must have produced B x G
completions per step and the same mean completion length within --length_tol.

Reported per trainer: s/step and completions/s (median over the steps after --warmup, step-to-step
wall time, so each trainer's own overhead counts) and the mean completion length; then the ratio
ours / TRL of completions/s. Our per-phase split (perf/* metrics: rollout, reward, logprobs,
update) is printed too. Timings are noisy on shared cores: use --repeat 2 (trainers interleaved).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PHASES = ("perf/rollout_s", "perf/reward_s", "perf/logprobs_s", "perf/update_s")
DEFAULT_CELLS = ("112x8x32", "112x16x32", "112x8x128", "112x16x128", "448x8x32", "448x16x32", "448x8x128", "448x16x128")


@dataclass(frozen=True)
class Cell:
    px: int
    G: int
    max_new_tokens: int

    @classmethod
    def parse(cls, text: str) -> "Cell":
        px, G, T = (int(x) for x in text.split("x"))
        return cls(px, G, T)

    def __str__(self) -> str:
        return f"{self.px}px G={self.G} T={self.max_new_tokens}"


@dataclass
class Result:
    step_s: list[float]             # step-to-step wall times after warm-up
    completions: list[int]          # completions per step (all steps)
    mean_length: list[float]        # mean completion length (tokens, EOS included) per step
    phases: dict[str, float]        # median seconds per phase (ours only)

    @property
    def s_per_step(self) -> float:
        return statistics.median(self.step_s)


# ---------------------------------------------------------------------------------------- settings
def compose(cell: Cell, args):
    from hydra import compose as hydra_compose, initialize_config_dir

    from vlmrl.infra.resolvers import register

    register()
    px2 = cell.px * cell.px
    overrides = [*args.overrides,                    # first: the benchmark's settings below win
        "kl=constant", f"kl.beta={args.beta}", f"algo.group_size={cell.G}",
        f"algo.max_new_tokens={cell.max_new_tokens}",
        f"model.grpo_lr={args.lr}", "model.grpo_schedule=constant", "loss=grpo", "advantage=grpo",
        "model.grpo_aggregation=sequence_mean",      # TRL's loss_type="grpo" (counting's main job: token_mean)
        f"model.rollout_temperature={args.temperature}",
        f"data.module.image_size={cell.px}", f"data.module.batch_size={args.batch}",
        f"data.module.train_size={args.batch * (args.warmup + args.steps)}",
        f"+model.processor_kwargs.min_pixels={px2}", f"+model.processor_kwargs.max_pixels={px2}",
        f"algo.module.micro_batch_size={args.batch * cell.G}", f"algo.steps={args.warmup + args.steps}",
        "logger.wandb.mode=disabled", "logger.samples_every=0", f"seed={args.seed}",
    ]
    if args.model:
        overrides += [f"model.name_or_path={args.model}", "model.build=null"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def ours_settings(module, datamodule) -> dict:
    import torch

    stage = module.curriculum.stage_at(0)[1]
    opt = module.configure_optimizers()["optimizer"]
    group = opt.param_groups[0]
    return {
        "prompts per step": datamodule.batch_size, "G": stage.group_size, "max_new_tokens": stage.max_new_tokens,
        "temperature": module.rollout.temperature, "top_p": module.rollout.top_p, "top_k": module.rollout.top_k,
        "beta": module.kl(0), "lr": group["lr"], "lr schedule": module.optim["schedule"],
        "weight_decay": group["weight_decay"], "adam betas": tuple(group["betas"]), "clip eps": (module.loss.clip_low, module.loss.clip_high),
        "mu": module.mu, "max_grad_norm": module.max_grad_norm,
        "loss aggregation": {"sequence_mean": "token mean per completion, then mean",   # algo/loss.py aggregate
                             "token_mean": "token mean over the batch",
                             "constant": "token sum / (N x max_new_tokens)"}[module.loss.aggregation],
        "advantage": "(r - group mean) / group std",                  # algo/advantages.py grpo (loss=grpo above)
        "micro-batch": module.micro_batch_size, "dtype": str(next(module.policy.parameters()).dtype),
        "threads": torch.get_num_threads(), "format_w": module.reward.format_w,
    }


def trl_settings(trainer) -> dict:
    import torch

    a = trainer.args
    aggregation = {"grpo": "token mean per completion, then mean"}.get(trainer.loss_type, trainer.loss_type)
    advantage = {"group": "(r - group mean) / group std"}.get(a.scale_rewards, a.scale_rewards)
    return {
        "prompts per step": a.generation_batch_size // trainer.num_generations, "G": trainer.num_generations,
        "max_new_tokens": a.max_completion_length, "temperature": trainer.temperature, "top_p": a.top_p,
        "top_k": a.top_k,
        "beta": a.beta, "lr": a.learning_rate, "lr schedule": str(a.lr_scheduler_type).split(".")[-1].lower(),
        "weight_decay": a.weight_decay, "adam betas": (a.adam_beta1, a.adam_beta2),
        "clip eps": (trainer.epsilon_low, trainer.epsilon_high), "mu": a.num_iterations,
        "max_grad_norm": a.max_grad_norm,
        "loss aggregation": aggregation, "advantage": advantage, "micro-batch": a.per_device_train_batch_size,
        "dtype": str(next(trainer.model.parameters()).dtype), "threads": torch.get_num_threads(),
        "format_w": trainer._bench_format_w,
    }


def assert_same(ours: dict, theirs: dict) -> None:
    differ = {k: (ours[k], theirs.get(k)) for k in ours if ours[k] != theirs.get(k)}
    if differ or ours.keys() != theirs.keys():
        raise AssertionError(f"settings differ (ours, TRL): {differ}; keys {set(ours) ^ set(theirs)}")


# ---------------------------------------------------------------------------------------- ours
def run_ours(cfg, records_by_step: list[list[dict]], warmup: int) -> tuple[Result, dict]:
    import lightning as L
    import torch
    from lightning.pytorch.loggers import Logger

    from vlmrl.assemble import components, make_module
    from vlmrl.trainer import make_trainer
    from vlmrl.starts.start import start_checkpoint

    class Capture(Logger):
        name, version = "capture", ""

        def __init__(self):
            super().__init__()
            self.rows = []

        def log_hyperparams(self, *a, **k):
            pass

        def log_metrics(self, metrics, step=None):
            self.rows.append({"step": step, **{k: float(v) for k, v in metrics.items()}})

    class Clock(L.Callback):
        def __init__(self):
            self.ends, self.threads = [], set()

        def on_train_start(self, trainer, pl_module):
            self.ends.append(time.perf_counter())

        def on_train_batch_end(self, *a, **k):
            self.ends.append(time.perf_counter())
            self.threads.add(torch.get_num_threads())

    parts = components(cfg)
    module = make_module(cfg, parts, start_checkpoint(cfg))
    datamodule = parts["datamodule"]
    assert [datamodule.train_batch(s) for s in range(len(records_by_step))] == records_by_step
    settings = ours_settings(module, datamodule)
    L.seed_everything(cfg.seed, verbose=False)
    capture, clock = Capture(), Clock()
    trainer = make_trainer(cfg, Path(tempfile.mkdtemp(prefix="bench-")), [capture], checkpoints=False,
                           accelerator="cpu", devices=1, callbacks=[clock], limit_val_batches=0,
                           enable_progress_bar=False, precision="32-true")
    torch.set_num_threads(settings["threads"])
    trainer.fit(module, datamodule=datamodule)
    assert clock.threads == {settings["threads"]}, f"ours ran with {clock.threads} threads"
    train = [r for r in capture.rows if "train/completion_len" in r]
    perf = [r for r in capture.rows if "perf/step_s" in r]
    n = int(cfg.data.module.batch_size) * int(cfg.algo.group_size)
    phases = {k[5:-2]: statistics.median(r[k] for r in perf[warmup:]) for k in perf[0] if k in PHASES}
    intervals = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    return Result(intervals[warmup:], [n] * len(train), [r["train/completion_len"] for r in train], phases), settings


# ---------------------------------------------------------------------------------------- TRL
def run_trl(cfg, records_by_step: list[list[dict]], path: str, processor_kwargs: dict, threads: int,
            warmup: int) -> tuple[Result, dict]:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from vlmrl.data.prompts import user_message
    from vlmrl.models.loading import load_model
    from vlmrl.rewards import Reward
    from vlmrl.rollout.hf import vision_token_ids

    reward = Reward(format_w=float(cfg.reward.format_w), hard=bool(cfg.reward.get("hard", False)))
    completions_per_call: list[int] = []

    def reward_fn(completions, answer, verifier, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        completions_per_call.append(len(texts))
        return reward(texts, list(answer), list(verifier))["total"].tolist()

    rows = [{"prompt": user_message(r), "image": r["images"][0], "answer": r["answer"], "verifier": r["verifier"]}
            for batch in records_by_step for r in batch]
    dataset = Dataset.from_list(rows)
    processor, _ = load_model(path, processor_kwargs=processor_kwargs, trainable=False)
    B, G, steps = int(cfg.data.module.batch_size), int(cfg.algo.group_size), len(records_by_step)
    out = tempfile.mkdtemp(prefix="trl-bench-")
    args = GRPOConfig(
        output_dir=out, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        per_device_train_batch_size=B * G, gradient_accumulation_steps=1, steps_per_generation=1,
        num_generations=G, max_completion_length=int(cfg.algo.max_new_tokens),
        temperature=float(cfg.model.rollout_temperature), top_p=float(cfg.rollout.top_p), top_k=int(cfg.rollout.top_k),
        beta=float(cfg.kl.beta), learning_rate=float(cfg.model.grpo_lr), lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=float(cfg.algo.module.max_grad_norm),
        epsilon=float(cfg.loss.clip_low), epsilon_high=float(cfg.loss.clip_high), num_iterations=int(cfg.algo.module.mu), loss_type="grpo",
        scale_rewards="group", max_steps=steps, logging_steps=1, save_strategy="no", report_to=[],
        shuffle_dataset=False, seed=int(cfg.seed), remove_unused_columns=False, disable_dropout=True,
        model_init_kwargs={"dtype": cfg.model.dtype, "attn_implementation": cfg.model.attn_implementation},
        generation_kwargs={"suppress_tokens": vision_token_ids(processor.tokenizer)},
    )

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends, self.logs, self.threads = [], [], set()

        def on_train_begin(self, *a, **k):
            self.ends.append(time.perf_counter())

        def on_step_end(self, *a, **k):
            self.ends.append(time.perf_counter())
            self.threads.add(torch.get_num_threads())

        def on_log(self, args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                self.logs.append(logs)

    clock = Clock()
    trainer = GRPOTrainer(model=path, reward_funcs=[reward_fn], args=args, train_dataset=dataset,
                          processing_class=processor, callbacks=[clock])
    trainer._bench_format_w = reward.format_w
    torch.set_num_threads(threads)
    settings = trl_settings(trainer)
    trainer.train()
    assert clock.threads == {threads}, f"TRL ran with {clock.threads} threads"
    intervals = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    lengths = [lg["completions/mean_length"] for lg in clock.logs]
    return Result(intervals[warmup:], completions_per_call, lengths, {}), settings


def same_prompts(processor, records: list[dict]) -> None:
    """Our chat-formatted prompt text equals the one TRL builds from the same record."""
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    from vlmrl.data.prompts import prompt_text, user_message

    for r in records:
        theirs = apply_chat_template({"prompt": prepare_multimodal_messages(user_message(r), images=r["images"])},
                                     processor)["prompt"]
        if theirs != prompt_text(processor, r):
            raise AssertionError(f"prompt text differs:\nours {prompt_text(processor, r)!r}\nTRL  {theirs!r}")


# ---------------------------------------------------------------------------------------- one cell
def run_cell(cell: Cell, args) -> dict:
    import torch

    from vlmrl.assemble import components
    from vlmrl.models.loading import load_model
    from vlmrl.starts.start import start_checkpoint

    torch.set_num_threads(args.threads)
    cfg = compose(cell, args)
    path = start_checkpoint(cfg)
    datamodule = components(cfg)["datamodule"]
    records_by_step = [datamodule.train_batch(s) for s in range(cfg.algo.steps)]
    processor_kwargs = {"min_pixels": cell.px ** 2, "max_pixels": cell.px ** 2}
    same_prompts(load_model(path, processor_kwargs=processor_kwargs, trainable=False)[0], records_by_step[0])
    runs = {"ours": [], "TRL": []}
    settings = {}
    for _ in range(args.repeat):
        for name in ("ours", "TRL"):
            if name == "ours":
                result, settings[name] = run_ours(cfg, records_by_step, args.warmup)
            else:
                result, settings[name] = run_trl(cfg, records_by_step, path, processor_kwargs, args.threads,
                                                 args.warmup)
            runs[name].append(result)
            assert_same(settings.get("ours", settings[name]), settings[name])
    assert_same(settings["ours"], settings["TRL"])
    n = args.batch * cell.G
    summary = {}
    for name, results in runs.items():
        for r in results:
            if any(c != n for c in r.completions) or len(r.completions) != cfg.algo.steps:
                raise AssertionError(f"{name}: completions per step {r.completions}, expected {n} x {cfg.algo.steps}")
        s = statistics.median(t for r in results for t in r.step_s)
        length = statistics.mean(x for r in results for x in r.mean_length)
        summary[name] = {"s_per_step": s, "completions_per_s": n / s, "mean_length": length,
                         "phases": {k: statistics.median(r.phases[k] for r in results) for k in results[0].phases}}
    lo, hi = sorted((summary["ours"]["mean_length"], summary["TRL"]["mean_length"]))
    if (hi - lo) / hi > args.length_tol:
        raise AssertionError(f"mean completion length differs beyond {args.length_tol:.0%}: ours "
                             f"{summary['ours']['mean_length']:.1f}, TRL {summary['TRL']['mean_length']:.1f}")
    summary["ratio"] = summary["ours"]["completions_per_s"] / summary["TRL"]["completions_per_s"]
    return summary


def format_row(cell: Cell, summary: dict) -> str:
    o, t = summary["ours"], summary["TRL"]
    phases = " ".join(f"{k} {v:.2f}" for k, v in o["phases"].items() if k != "step")
    return (f"| {cell.px} | {cell.G} | {cell.max_new_tokens} | {o['s_per_step']:.2f} | {t['s_per_step']:.2f} | "
            f"{o['completions_per_s']:.1f} | {t['completions_per_s']:.1f} | **{summary['ratio']:.2f}x** | "
            f"{o['mean_length']:.1f} / {t['mean_length']:.1f} | {phases} |")


HEADER = ("| px | G | max_new_tokens | ours s/step | TRL s/step | ours compl/s | TRL compl/s | ours / TRL | "
          "mean length ours / TRL | ours per phase (s) |\n|---|---|---|---|---|---|---|---|---|---|")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", nargs="+", default=list(DEFAULT_CELLS), help="PXxGxTOKENS, e.g. 112x8x32")
    p.add_argument("--steps", type=int, default=4, help="timed steps per trainer and cell")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--repeat", type=int, default=1, help="runs per trainer and cell, interleaved")
    p.add_argument("--batch", type=int, default=8, help="prompts per step (B)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--length_tol", type=float, default=0.25, help="allowed relative gap of mean completion length")
    p.add_argument("--model", default=None, help="a checkpoint dir (default: the cached tiny instruct model)")
    p.add_argument("--overrides", nargs="*", default=[], help="more Hydra overrides for the run's config, e.g. "
                   "+scale=smoke (a small start checkpoint; the settings above still win)")
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    import platform

    import torch
    import trl
    import transformers

    print(f"# {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.threads} torch threads | torch {torch.__version__}, transformers {transformers.__version__}, "
          f"trl {trl.__version__} | B={args.batch}, T={args.temperature}, beta={args.beta}, lr={args.lr}, fp32 | "
          f"median of {args.steps} steps after {args.warmup} warm-up, x{args.repeat}")
    print(HEADER, flush=True)
    summaries = []
    for text in args.cells:
        cell = Cell.parse(text)
        summary = run_cell(cell, args)
        summaries.append({"cell": str(cell), **summary})
        print(format_row(cell, summary), flush=True)
    return summaries


if __name__ == "__main__":
    main()
