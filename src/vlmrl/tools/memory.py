"""What fits where: per-GPU training memory of the real models at the papers' settings.

    python -m vlmrl.tools.memory [--gpus 8] [--gpu-gb 80] [--vllm-share 0.3]

Parameter counts are exact: each model of conf/model/ is built on the meta device (no weights, no
download) from its published architecture (the hub config.json numbers below). Memory per GPU:
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
Sequence: 612 prompt tokens (max_pixels 401408 / 28^2 = 512 image tokens + ~100 text; R1-V) plus
the completion length, 4k / 8k / 16k as Vision-R1's PTST stages (arXiv 2503.06749). Estimates, not
measurements: allocator fragmentation and CUDA context (~1-2 GB) come on top.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[3] / "conf" / "model"
# Published config.json numbers (Qwen/Qwen2-VL-2B-Instruct, Qwen/Qwen2-VL-7B-Instruct, Qwen/Qwen2.5-VL-7B-Instruct on the hub).
_QWEN2_VISION = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14, spatial_merge_size=2,
                     temporal_patch_size=2, in_channels=3)
ARCH = {
    "Qwen/Qwen2-VL-2B-Instruct": ("Qwen2VLConfig", dict(
        text_config=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
        vision_config=dict(**_QWEN2_VISION, hidden_size=1536), tie_word_embeddings=True)),
    "Qwen/Qwen2-VL-7B-Instruct": ("Qwen2VLConfig", dict(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
        vision_config=dict(**_QWEN2_VISION, hidden_size=3584), tie_word_embeddings=False)),
    "Qwen/Qwen2.5-VL-7B-Instruct": ("Qwen2_5_VLConfig", dict(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31]), tie_word_embeddings=False)),
}
PROMPT_TOKENS = 612
GIB = 1024 ** 3


def count_parameters(name: str) -> int:
    """Exact parameter count of a published architecture, built on the meta device."""
    import torch
    import transformers
    from transformers import AutoModelForImageTextToText

    kind, kwargs = ARCH[name]
    config = getattr(transformers, kind)(**kwargs)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    return sum(p.numel() for p in model.parameters())


def per_gpu_gib(params: int, hidden: int, layers: int, vocab: int, completion: int, gpus: int, zero: int) -> dict:
    """Per-GPU GiB by part under ZeRO level `zero` (0: none, 2: optimizer + gradients sharded, 3: + parameters)."""
    s = PROMPT_TOKENS + completion
    states = {0: 16 * params, 2: 2 * params + 14 * params / gpus, 3: 16 * params / gpus}[zero]
    reference = 2 * params / (gpus if zero == 3 else 1)
    activations = layers * 2 * s * hidden + 34 * s * hidden + 2 * completion * vocab * 4
    gather = 2 * params if zero == 3 else 0
    parts = {"states": states, "reference": reference, "activations": activations, "generate_gather": gather}
    parts = {k: v / GIB for k, v in parts.items()}
    parts["total"] = sum(parts.values())
    return parts


def table(gpus: int = 8, gpu_gb: float = 80, vllm_share: float = 0.3) -> list[dict]:
    rows = []
    budget = gpu_gb * 1e9 / GIB * (1 - vllm_share)
    for path in sorted(CONF.glob("qwen*.yaml")):
        name = OmegaConf.load(path).name_or_path
        params = count_parameters(name)
        text = ARCH[name][1]["text_config"]
        for zero in (0, 2, 3):
            for length in (4096, 8192, 16384):
                mem = per_gpu_gib(params, text["hidden_size"], text["num_hidden_layers"], text["vocab_size"], length,
                                  gpus, zero)
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
