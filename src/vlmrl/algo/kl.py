"""KL-weight schedulers: beta as a pure function of the rollout step s (0 <= s <= t).

`dynamic` is GRPO-D, OThink-MR1 Eq. 3, with w = warmup_frac * t and beta_mid = (beta_min + beta_max) / 2:
    s <= w      : beta(s) = beta_mid - (beta_mid - beta_min) * s / w
    w < s <= t  : beta(s) = beta_min + (beta_max - beta_min) * (s - w) / (t - w)
a V: beta_mid at s = 0, beta_min at w, beta_max at t. The paper's prose says the weight "starts
small and increases"; the equation is what is implemented here.

`adaptive` is beyond both papers: the PPO-style controller of Ziegler et al. 2019 (arXiv 1909.08593,
Sec. 2.2) that verl and OpenRLHF offer. After each rollout step with observed KL k over n samples,
    beta <- beta * (1 + clip(k / target - 1, -0.2, 0.2) * n / horizon)
so beta is state, not a function of the step: it is saved in checkpoints and restored exactly.
The step schedules hold no training state; their `state_dict` records their parameters so a resumed
run can refuse a silently changed schedule.
"""
from __future__ import annotations


class KLScheduler:
    total_steps: int

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    @property
    def always_zero(self) -> bool:
        """True when beta is 0 at every step: the reference model is then never loaded."""
        return all(self(s) == 0 for s in range(self.total_steps + 1))

    def state_dict(self) -> dict:
        return {"class": type(self).__name__, **{k: v for k, v in vars(self).items()}}

    def load_state_dict(self, state: dict) -> None:
        if state != self.state_dict():
            raise ValueError(f"checkpoint KL schedule {state} differs from the configured {self.state_dict()}")

    def update(self, observed_kl: float, n_samples: int) -> None:
        """Called after every rollout step with the step's mean KL; step schedules ignore it."""


def _check(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"kl.{name}={value} must be >= 0")
    return float(value)


class NoKL(KLScheduler):
    def __init__(self, total_steps: int):
        self.total_steps = int(total_steps)

    def __call__(self, step: int) -> float:
        return 0.0


class ConstantKL(KLScheduler):
    def __init__(self, beta: float, total_steps: int):
        self.beta, self.total_steps = _check("beta", beta), int(total_steps)

    def __call__(self, step: int) -> float:
        return self.beta


class LinearKL(KLScheduler):
    """beta moves linearly from `start` at s = 0 to `end` at s = t."""

    def __init__(self, start: float, end: float, total_steps: int):
        self.start, self.end, self.total_steps = _check("start", start), _check("end", end), int(total_steps)

    def __call__(self, step: int) -> float:
        frac = min(max(step / self.total_steps, 0.0), 1.0) if self.total_steps else 1.0
        return self.start + (self.end - self.start) * frac


class DynamicKL(KLScheduler):
    """GRPO-D (OThink-MR1 Eq. 3)."""

    def __init__(self, beta_min: float, beta_max: float, total_steps: int, warmup_frac: float):
        self.beta_min, self.beta_max = _check("beta_min", beta_min), _check("beta_max", beta_max)
        if self.beta_min > self.beta_max:
            raise ValueError(f"kl.beta_min={beta_min} must be <= kl.beta_max={beta_max}")
        if not 0 < warmup_frac < 1:
            raise ValueError(f"kl.warmup_frac={warmup_frac} must be in (0, 1)")
        self.total_steps, self.warmup_frac = int(total_steps), float(warmup_frac)

    def __call__(self, step: int) -> float:
        t = self.total_steps
        w = self.warmup_frac * t
        s = min(max(step, 0), t)
        beta_mid = (self.beta_min + self.beta_max) / 2
        if s <= w:
            return beta_mid - (beta_mid - self.beta_min) * s / w
        return self.beta_min + (self.beta_max - self.beta_min) * (s - w) / (t - w)


class AdaptiveKL(KLScheduler):
    """Ziegler et al. 2019 adaptive controller (verl `AdaptiveKLController`, OpenRLHF `kl_target`)."""

    def __init__(self, init_beta: float, target: float, horizon: int, total_steps: int):
        self.init_beta, self.value = _check("init_beta", init_beta), float(init_beta)
        if target <= 0 or horizon <= 0:
            raise ValueError(f"kl.target={target} and kl.horizon={horizon} must be > 0")
        self.target, self.horizon, self.total_steps = float(target), int(horizon), int(total_steps)

    def __call__(self, step: int) -> float:
        return self.value

    @property
    def always_zero(self) -> bool:
        return self.init_beta == 0  # beta only ever scales: from 0 it stays 0

    def update(self, observed_kl: float, n_samples: int) -> None:
        error = min(max(observed_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + error * n_samples / self.horizon

    def load_state_dict(self, state: dict) -> None:
        mine = {k: v for k, v in self.state_dict().items() if k != "value"}
        if {k: v for k, v in state.items() if k != "value"} != mine:
            raise ValueError(f"checkpoint KL controller {state} differs from the configured {self.state_dict()}")
        self.value = state["value"]
