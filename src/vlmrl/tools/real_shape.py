"""One GRPO step of a real model at its true shape with random weights, on this machine: wiring and memory.

    python -m vlmrl.tools.real_shape model=qwen2_vl_2b [any train.py override]

Nothing is downloaded. The model config's hub id (model.name_or_path) names a published architecture
(models/published.py); a checkpoint of it is written once, in a child process, into the cache
(`<model.cache_dir or $VLMRL_CACHE>/real-shape/<stem>`): random weights in the model's dtype at every
published shape, a tokenizer trained locally (models/tiny.py: Qwen's special tokens, ids inside the
published vocabulary) and the family's processor and published chat template (models/families.py). The
run's config is then train.py's, with the checkpoint as model.name_or_path and the step's sizes
(`STEP`): 2 prompts x 2 samples x 16 tokens, LoRA (the model's own model.lora, else `LORA`), the model
config's dtype and gradient checkpointing. The LightningModule, rollout and loss are built by
`vlmrl.assemble.make_module` and trained one step by a Lightning Trainer, as in train.py (without
checkpoints, evaluation or W&B). With random weights every reward is 0, so every advantage is 0; a small
entropy bonus (loss.entropy_coef, `STEP`) gives the step a non-zero gradient, so that the adapter moving
proves the backward pass reaches it.

It fails (exit 1, one line per failed check) on any wiring error:
* dtype: the base weights are not in model.dtype, or anything but the adapter trains;
* attention: the language model or the vision tower does not run model.attn_implementation;
* gradient checkpointing: off although model.gradient_checkpointing is true (or on although false);
* pixel bounds: the processor ignores model.processor_kwargs' max_pixels (a large probe image must be resized
  to the published rule: `smart_resize`), or a prompt's image tokens differ from its image grid;
* chat template: the processor's template is not the family's published one, or a prompt does not render as it;
* the step: a non-finite loss, reward or gradient norm, or an adapter that did not move.
Then it prints the step's wall time and this process's peak memory beside `tools.memory.lora_step_gib`'s
estimate. Peak memory: the high-water mark of resident memory (ru_maxrss) and of anonymous resident memory
(RssAnon, sampled every 20 ms: without file pages such as the mapped checkpoint), each also minus the
process's resident memory before the model loaded.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

GIB = 1024 ** 3
STEP = ["algo.steps=1", "algo.group_size=2", "algo.max_new_tokens=16", "data.module.batch_size=2",
        "data.module.train_size=2", "data.module.val_size=2", "data.module.test_size=2",
        "data.module.image_size=224",     # 224 px: 64 image tokens at patch 14 (Qwen3-VL: min_pixels 256 px -> 64)
        "loss.entropy_coef=0.01",         # a non-zero gradient from random weights (see the module docstring)
        "strategy=single", "trainer.devices=1", "trainer.num_nodes=1", "logger.wandb.mode=disabled"]
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}   # docs/scale.md's example
TOKENIZER = {"vocab_size": 512, "seed": 0}   # models/tiny.py's tokenizer, as tiny.yaml builds it
PROBE = (1024, 768)                          # (width, height) of the pixel-bounds probe: above every max_pixels we use


class WiringError(RuntimeError):
    """A real-shape check failed; the message has one line per failed check."""


# ---------------------------------------------------------------------------------------------- checkpoint
def checkpoint_stem(name: str, dtype: str) -> str:
    from ..models.families import FAMILIES, chat_template
    from ..models.published import FAMILY, published

    kind, kwargs = published(name)
    key = {"arch": kwargs, "kind": kind, "dtype": dtype, "tokenizer": TOKENIZER,
           "template": hashlib.sha256(chat_template(FAMILY[kind]).encode()).hexdigest(),
           "processor": repr(FAMILIES[FAMILY[kind]])}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}-{dtype}-{digest}"


def write_checkpoint(kind: str, arch: dict, dtype: str, out: str) -> None:
    """Random weights of the architecture (`kind`, `arch`: a models/published.py entry) in `dtype`, with the
    family's processor, into `out`."""
    import torch
    import transformers
    from transformers import AutoModelForImageTextToText

    from ..models.families import family_processor
    from ..models.loading import DTYPES
    from ..models.published import FAMILY, MAX_PIXELS, MIN_PIXELS
    from ..models.tiny import SPECIAL_TOKENS, build_tokenizer

    tokenizer = build_tokenizer(**TOKENIZER)
    processor = family_processor(FAMILY[kind], tokenizer, MIN_PIXELS[kind], MAX_PIXELS[kind])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = getattr(transformers, kind)(**arch, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                                         vision_start_token_id=ids["<|vision_start|>"],
                                         vision_end_token_id=ids["<|vision_end|>"])
    text = config.text_config
    text.bos_token_id, text.eos_token_id, text.pad_token_id = ids["<|endoftext|>"], ids["<|im_end|>"], ids["<|endoftext|>"]
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=DTYPES[dtype])
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (Path(out) / "generation_config.json").write_text(json.dumps({"eos_token_id": text.eos_token_id,
                                                                   "pad_token_id": text.pad_token_id}))


def real_checkpoint(name: str, dtype: str, cache_dir: str | None) -> Path:
    """The cached random checkpoint of `name` in `dtype`, written in a child process on first use (so that
    this process's peak memory is the step's, not the writer's)."""
    from ..models.published import published
    from ..starts.start import build_once, cache_root

    kind, arch = published(name)

    def build(tmp: Path) -> None:
        started = time.time()
        print(f"[real_shape] writing a random {name} ({dtype}) to {tmp.parent} (once)", flush=True)
        child = multiprocessing.get_context("spawn").Process(target=write_checkpoint,
                                                                 args=(kind, arch, dtype, str(tmp)))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"writing the random {name} checkpoint failed (exit code {child.exitcode})")
        print(f"[real_shape] written in {time.time() - started:.0f} s", flush=True)

    target = cache_root(cache_dir) / "real-shape" / checkpoint_stem(name, dtype)
    return build_once(target, build)


# ---------------------------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class AnonPeak:
    """The high-water mark of this process's anonymous resident memory (RssAnon), sampled in a thread."""

    def __init__(self, every_s: float = 0.02):
        self.peak, self.every_s, self._stop = 0, every_s, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib("RssAnon"))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "AnonPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kib("RssAnon"))


# ---------------------------------------------------------------------------------------------- checks
def check_setup(cfg, processor, policy, family: str, record: dict) -> list[str]:
    """Failed wiring checks before the step (dtype, attention, checkpointing, pixel bounds, chat template)."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    from ..data.prompts import encode_prompts, prompt_text
    from ..models.families import chat_template
    from ..models.loading import DTYPES
    from ..rollout.shared_prefix import hf_model

    failed, base = [], hf_model(policy)
    dtype = DTYPES[cfg.model.dtype]
    wrong = sorted({str(p.dtype) for n, p in policy.named_parameters() if "lora_" not in n and p.dtype != dtype})
    if wrong:
        failed.append(f"dtype: base weights in {wrong}, model.dtype={cfg.model.dtype}")
    trains = [n for n, p in policy.named_parameters() if p.requires_grad]
    if not trains or any("lora_" not in n for n in trains):
        failed.append(f"dtype: {len(trains)} trainable tensors, {sum('lora_' not in n for n in trains)} outside the "
                      "adapter (LoRA trains the adapter only)")
    for where, config in (("language model", base.config.get_text_config()), ("vision tower", base.config.vision_config)):
        if config._attn_implementation != cfg.model.attn_implementation:
            failed.append(f"attention: the {where} runs {config._attn_implementation!r}, model.attn_implementation="
                          f"{cfg.model.attn_implementation!r}")
    checkpointing = bool(getattr(base, "is_activation_checkpointing", False))
    if checkpointing != bool(cfg.model.gradient_checkpointing):
        failed.append(f"gradient checkpointing: {checkpointing}, model.gradient_checkpointing="
                      f"{cfg.model.gradient_checkpointing}")
    image = processor.image_processor
    bounds = dict(cfg.model.processor_kwargs)
    max_pixels = bounds.get("max_pixels", image.size.longest_edge)
    min_pixels = bounds.get("min_pixels", image.size.shortest_edge)
    factor = image.patch_size * image.merge_size
    height, width = smart_resize(PROBE[1], PROBE[0], factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    probe = image(images=[Image.new("RGB", PROBE, "white")], return_tensors="pt")["image_grid_thw"][0].tolist()
    expected = [1, height // image.patch_size, width // image.patch_size]
    if probe != expected:
        failed.append(f"pixel bounds: a {PROBE[0]}x{PROBE[1]} image -> grid {probe}, expected {expected} from "
                      f"min_pixels={min_pixels}, max_pixels={max_pixels} (model.processor_kwargs ignored?)")
    if processor.chat_template != chat_template(family):
        failed.append(f"chat template: the processor's is not the published {family} template")
    text = prompt_text(processor, record)
    pad = "<|vision_start|><|image_pad|><|vision_end|>"
    head = "<|im_start|>user\n" if family == "qwen3_vl" else "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    if not (text.startswith(head) and text.count(pad) == len(record["images"])
            and text.endswith("<|im_end|>\n<|im_start|>assistant\n")):
        failed.append(f"chat template: the prompt renders as {text[:120]!r}...")
    encoded = encode_prompts(processor, [record])
    tokens = int((encoded["input_ids"] == base.config.image_token_id).sum())
    grid = int(encoded["image_grid_thw"].prod(dim=1).sum()) // image.merge_size ** 2
    if tokens != grid:
        failed.append(f"pixel bounds: {tokens} image tokens in the prompt, {grid} from its image grid")
    return failed


def check_step(metrics: dict, before: dict, policy) -> list[str]:
    """Failed checks of the step: finite metrics, and the adapter moved."""
    failed = [f"step: {k}={v}" for k, v in metrics.items() if not math.isfinite(v)]
    moved = sum(int(not p.detach().equal(before[n])) for n, p in policy.named_parameters() if n in before)
    if not moved:
        failed.append(f"step: no adapter tensor moved (train/grad_norm={metrics.get('train/grad_norm')})")
    return failed


# ---------------------------------------------------------------------------------------------- the step
def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from ..infra.resolvers import register
    from ..tools.memory import CONF

    register()
    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=[*overrides, *STEP])


def run_step(overrides: list[str]) -> dict:
    """Write (once) and load the real-shape checkpoint, check its wiring, run one GRPO step; -> the figures.
    Raises WiringError naming every failed check."""
    import lightning as L
    from omegaconf import open_dict

    from ..assemble import components, make_module
    from ..trainer import make_trainer
    from ..config import resolve
    from ..infra.perf import use_threads
    from ..infra.runlog import JsonlLogger
    from ..models.families import family_of
    from ..models.published import published, text_dims
    from ..rollout.shared_prefix import hf_model
    from .memory import lora_step_gib

    cfg = compose(overrides)
    name = cfg.model.name_or_path
    if cfg.model.get("build") or name is None:
        raise ValueError("real_shape runs a real model's config (model=qwen2_vl_2b, qwen2_5_vl_3b, qwen3_vl_2b, ...); "
                         "the tiny models run as they are: python train.py model=tiny")
    kind, arch = published(name)
    path = real_checkpoint(name, cfg.model.dtype, cfg.model.cache_dir)
    with open_dict(cfg):
        cfg.model.name_or_path = str(path)
        if not cfg.model.get("lora"):
            cfg.model.lora = LORA
    resolve(cfg)
    parts = components(cfg)
    use_threads(cfg.get("threads"))
    baseline = {"rss": _status_kib("VmRSS") * 1024, "anon": _status_kib("RssAnon") * 1024}
    with AnonPeak() as anon, tempfile.TemporaryDirectory() as run_dir:
        started = time.time()
        L.seed_everything(cfg.seed, verbose=False)   # the adapter's random init: the same step every run
        module = make_module(cfg, parts, str(path))
        load_s = time.time() - started
        loaded = {"rss": _status_kib("VmRSS") * 1024, "anon": _status_kib("RssAnon") * 1024, "anon_peak": anon.peak * 1024}
        policy, processor = module.policy, module.processor
        family = family_of(hf_model(policy).config)
        records = parts["datamodule"].train_batch(0)
        failed = check_setup(cfg, processor, policy, family, records[0])
        if failed:
            raise WiringError("\n".join(failed))
        before = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
        logger = JsonlLogger(run_dir)
        trainer = make_trainer(cfg, Path(run_dir), [logger], checkpoints=False, limit_train_batches=1,
                               val_check_interval=1, limit_val_batches=0, enable_progress_bar=False)
        started = time.time()
        trainer.fit(module, datamodule=parts["datamodule"])
        step_s = time.time() - started
        rows = [json.loads(line) for line in logger.path.read_text().splitlines()]
    metrics = {k: v for row in rows for k, v in row.items() if k.startswith("train/")}
    failed = check_step(metrics, before, policy)
    if failed:
        raise WiringError("\n".join(failed))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    dims, vision = text_dims(name), arch["vision_config"]
    params = sum(p.numel() for p in policy.parameters())
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    prompt_tokens = _prompt_tokens(processor, records)
    patches = _image_patches(processor, records)
    estimate = lora_step_gib(params - trainable, trainable, dims["hidden_size"], dims["num_hidden_layers"],
                             dims["vocab_size"], rows=len(records) * cfg.algo.group_size, prompt=prompt_tokens,
                             completion=cfg.algo.max_new_tokens, image_patches=patches,
                             vision_hidden=vision.get("embed_dim", vision.get("hidden_size")),
                             vision_layers=vision["depth"])
    return {"model": name, "family": family, "config_class": kind,
            "params": params, "trainable": trainable, "dtype": cfg.model.dtype,
            "attn_implementation": cfg.model.attn_implementation,
            "gradient_checkpointing": cfg.model.gradient_checkpointing, "prompts": len(records),
            "group_size": cfg.algo.group_size, "max_new_tokens": cfg.algo.max_new_tokens,
            "prompt_tokens": prompt_tokens, "image_patches": patches, "load_s": round(load_s, 1),
            "step_s": round(step_s, 1), "threads": torch_threads(),
            "peak_rss_gib": peak_rss / GIB, "peak_rss_step_gib": (peak_rss - baseline["rss"]) / GIB,
            "peak_anon_gib": anon.peak * 1024 / GIB, "peak_anon_step_gib": (anon.peak * 1024 - baseline["anon"]) / GIB,
            "loaded_rss_gib": (loaded["rss"] - baseline["rss"]) / GIB, "loaded_anon_gib": (loaded["anon"] - baseline["anon"]) / GIB,
            "load_peak_anon_gib": (loaded["anon_peak"] - baseline["anon"]) / GIB,
            "estimate_gib": estimate, "metrics": metrics}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _prompt_tokens(processor, records) -> int:
    from ..data.prompts import encode_prompts

    return int(encode_prompts(processor, records)["attention_mask"].sum(dim=1).max())


def _image_patches(processor, records) -> int:
    from ..data.prompts import encode_prompts

    return int(encode_prompts(processor, records)["image_grid_thw"].prod(dim=1).sum())


def report(result: dict) -> str:
    est = result["estimate_gib"]
    lines = [
        f"[real_shape] {result['model']} ({result['config_class']}): {result['params'] / 1e9:.3f}B parameters at the "
        f"published shape, {result['trainable'] / 1e6:.2f}M trainable (LoRA), {result['dtype']}, "
        f"{result['attn_implementation']}, gradient checkpointing {result['gradient_checkpointing']}",
        f"[real_shape] wiring: dtype, attention, gradient checkpointing, pixel bounds, chat template: ok",
        f"[real_shape] one GRPO step: {result['prompts']} prompts x {result['group_size']} samples x "
        f"{result['max_new_tokens']} tokens, prompt {result['prompt_tokens']} tokens, {result['image_patches']} image "
        f"patches; load {result['load_s']} s, step {result['step_s']} s on {result['threads']} thread(s); "
        f"train/grad_norm {result['metrics'].get('train/grad_norm', float('nan')):.3g}",
        f"[real_shape] peak memory (GiB): resident {result['peak_rss_gib']:.2f} (step's share "
        f"{result['peak_rss_step_gib']:.2f}), anonymous {result['peak_anon_gib']:.2f} (step's share "
        f"{result['peak_anon_step_gib']:.2f}); after loading: resident +{result['loaded_rss_gib']:.2f}, anonymous "
        f"+{result['loaded_anon_gib']:.2f} (peak while loading +{result['load_peak_anon_gib']:.2f})",
        "[real_shape] estimate (GiB, python -m vlmrl.tools.memory's lora_step_gib): " + ", ".join(
            f"{k} {v:.2f}" for k, v in est.items()),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        result = run_step(args)
    except WiringError as exc:
        print("[real_shape] FAILED:\n" + "\n".join(f"  {line}" for line in str(exc).splitlines()), file=sys.stderr)
        return 1
    print(report(result))
    out = os.environ.get("VLMRL_REAL_SHAPE_JSON")   # the slow test reads the figures from here
    if out:
        Path(out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
