"""What fits where: per-GPU training memory of the real models at the papers' settings.

    python -m vlmrl.tools.memory [--gpus 8] [--gpu-gb 80] [--vllm-share 0.3]

Parameter counts are exact: each model of conf/model/ is built on the meta device (no weights, no
download) from its published architecture (the hub config.json numbers in models/published.py:
Qwen2-VL 2B/7B, Qwen2.5-VL 3B/7B, Qwen3-VL 2B/4B/8B). Memory per GPU:
* weights, gradients, Adam: 16 bytes per trainable parameter in bf16 mixed precision (ZeRO paper,
  arXiv 1910.02054, Sec. 3.1: 2 + 2 + 12), divided over GPUs as the ZeRO stage says (0: none, 2:
  gradients and optimizer state, 3: everything); LoRA trains ~0.5% of them (not in the table);
* the frozen reference: 2 bytes per parameter, sharded under ZeRO-3 (strategy.reference.shard);
* activations of one sequence (micro-batch 1) under gradient checkpointing: each layer's input
  (2*s*h bytes) plus one layer recomputed (34*s*h bytes with flash attention: Korthikanti et al.,
  arXiv 2205.05198, Eq. 2 without the 5*a*s/h term), plus the completion logits and their log-softmax
  in fp32 (2 * L * V * 4 bytes; rollout/base.completion_logprobs);
* generation under ZeRO-3 gathers the full bf16 weights (2 bytes per parameter) for HF generate;
* a colocated vLLM engine takes `--vllm-share` of the GPU (its gpu_memory_utilization; ours: assumed 0.3).
Sequence: 612 prompt tokens (max_pixels 401408 / 28^2 = 512 image tokens + ~100 text; R1-V; Qwen3-VL's
16 px patches: 401408 / 32^2 = 392 image tokens) plus
the completion length, 4k / 8k / 16k as Vision-R1's PTST stages (arXiv 2503.06749). Estimates, not
measurements: allocator fragmentation and CUDA context (~1-2 GB) come on top.

`lora_step_gib` estimates one GRPO step with LoRA on one device (CPU or GPU), which
`python -m vlmrl.tools.real_shape` prints beside the peak memory it measures at the true shape.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from ..models import published
from ..models.families import FAMILIES

CONF = Path(__file__).resolve().parents[3] / "conf" / "model"
ARCH = published.ARCH   # the published config.json numbers of every real model (models/published.py)
PROMPT_TOKENS = 612
GIB = 1024 ** 3


def count_parameters(name: str) -> int:
    """Exact parameter count of a published architecture, built on the meta device."""
    import torch
    from transformers import AutoModelForImageTextToText

    config = published.build_config(name)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    return sum(p.numel() for p in model.parameters())


def per_gpu_gib(params: int, hidden: int, layers: int, vocab: int, completion: int, gpus: int, zero: int,
                prompt: int = PROMPT_TOKENS) -> dict:
    """Per-GPU GiB by part under ZeRO level `zero` (0: none, 2: optimizer + gradients sharded, 3: + parameters)."""
    s = prompt + completion
    states = {0: 16 * params, 2: 2 * params + 14 * params / gpus, 3: 16 * params / gpus}[zero]
    reference = 2 * params / (gpus if zero == 3 else 1)
    activations = layers * 2 * s * hidden + 34 * s * hidden + 2 * completion * vocab * 4
    gather = 2 * params if zero == 3 else 0
    parts = {"states": states, "reference": reference, "activations": activations, "generate_gather": gather}
    parts = {k: v / GIB for k, v in parts.items()}
    parts["total"] = sum(parts.values())
    return parts


def lora_step_gib(params: int, trainable: int, hidden: int, layers: int, vocab: int, rows: int, prompt: int,
                  completion: int, image_patches: int = 0, vision_hidden: int = 0, vision_layers: int = 0) -> dict:
    """GiB of one GRPO step on one device with LoRA (tools/real_shape.py): bf16 base weights, the adapter in
    fp32 with its gradient and Adam state, activations of `rows` sequences of prompt + completion tokens under
    gradient checkpointing (the formula of `per_gpu_gib`), the completion logits in fp32, and the vision
    tower's activations of the prompts' images (no checkpointing needed there: nothing in it trains, so only
    the running block's tensors live, ~34 * patches * width bytes). No reference copy: under LoRA the
    reference is the policy with its adapter disabled (models.loading.AdapterDisabled)."""
    s = prompt + completion
    parts = {
        "weights": 2 * params,
        "adapter": 16 * trainable,   # fp32 weight + gradient + Adam m, v (peft keeps adapters in fp32)
        "activations": rows * (layers * 2 * s * hidden + 34 * s * hidden) + 2 * rows * completion * vocab * 4,
        "vision": 34 * image_patches * vision_hidden + 2 * image_patches * vision_hidden * vision_layers,
    }
    parts = {k: v / GIB for k, v in parts.items()}
    parts["total"] = sum(parts.values())
    return parts


def table(gpus: int = 8, gpu_gb: float = 80, vllm_share: float = 0.3) -> list[dict]:
    rows = []
    budget = gpu_gb * 1e9 / GIB * (1 - vllm_share)
    for path in sorted(CONF.glob("qwen*.yaml")):
        name = OmegaConf.load(path).name_or_path
        params = count_parameters(name)
        kind, arch = published.published(name)
        text = arch["text_config"]
        # the prompt at max_pixels 401408: an image token covers (patch * 2)^2 px (Qwen3-VL's patch is 16: 392 tokens)
        patch = FAMILIES[published.FAMILY[kind]].patch_size
        prompt = PROMPT_TOKENS - 401408 // 28 ** 2 + 401408 // (2 * patch) ** 2
        for zero in (0, 2, 3):
            for length in (4096, 8192, 16384):
                mem = per_gpu_gib(params, text["hidden_size"], text["num_hidden_layers"], text["vocab_size"], length,
                                  gpus, zero, prompt)
                rows.append({"model": path.stem, "params_b": params / 1e9, "zero": zero, "tokens": length, **mem,
                             "budget": budget, "fits": mem["total"] <= budget})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vlmrl.tools.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=8)          # Vision-R1: 8 GPUs per node
    parser.add_argument("--gpu-gb", type=float, default=80)     # A100 / H100 80 GB
    parser.add_argument("--vllm-share", type=float, default=0.3)
    args = parser.parse_args(argv)
    rows = table(args.gpus, args.gpu_gb, args.vllm_share)
    print(f"Per-GPU memory (GiB), bf16 mixed precision + Adam, gradient checkpointing, micro-batch 1, {args.gpus} GPUs "
          f"of {args.gpu_gb:g} GB, vLLM share {args.vllm_share:g} -> {rows[0]['budget']:.1f} GiB for training")
    header = f"{'model':<15}{'params':>8}{'ZeRO':>6}{'tokens':>8}{'states':>8}{'ref':>7}{'activ':>7}{'gather':>8}{'total':>8}  fits"
    print(header)
    for r in rows:
        print(f"{r['model']:<15}{r['params_b']:>7.2f}B{r['zero']:>6}{r['tokens']:>8}{r['states']:>8.1f}{r['reference']:>7.1f}"
              f"{r['activations']:>7.1f}{r['generate_gather']:>8.1f}{r['total']:>8.1f}  {'yes' if r['fits'] else 'no'}")


if __name__ == "__main__":
    main()
