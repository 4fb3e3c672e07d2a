"""Thread count and throughput metrics: wall time per phase of a training step, completions and tokens per second, peak memory.

A GRPO step is timed in four phases, the split the benchmark (`benchmarks/grpo_vs_trl.py`) reports:
rollout (sampling), reward (scoring), logprobs (the no-grad reference pass) and update
(policy forward-backward and the optimizer). On a GPU each phase boundary synchronises, so the split
is honest (CUDA work is asynchronous); that costs a few microseconds a phase.
"""
from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager

import torch


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class PhaseTimer:
    """Accumulates wall time per named phase: `with timer("rollout"): ...`; `seconds` maps phase -> s."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, phase: str):
        _sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            _sync()
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        _sync()
        return time.perf_counter() - self.started


def step_metrics(timer: PhaseTimer, completions: int, tokens: int) -> dict[str, float]:
    """perf/* metrics of one step: seconds per phase and in all, completions/s and generated tokens/s."""
    total = timer.total()
    return {**{f"perf/{phase}_s": s for phase, s in timer.seconds.items()}, "perf/step_s": total,
            "perf/completions_per_s": completions / total, "perf/tokens_per_s": tokens / total}


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None: leave torch's default) -> the count now in use.

    A config value rather than the environment's accident: a step on the tiny model is ~2x slower on
    one thread than on two, and tenfold slower with more threads than free cores."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def peak_memory_gb() -> dict[str, float]:
    """Peak resident memory of this process (CPU) and, with CUDA, peak allocated GPU memory, in GB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    peak = {"peak_rss_gb": rss / (1e9 if sys.platform == "darwin" else 1e6)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return peak
