"""Our losses against TRL 1.16's own GRPOTrainer._compute_loss on the same tensors (tests/trl_harness.py):
the loss and its gradient to 1e-6, for every variant TRL also implements. Skipped without TRL (the
benchmark extra, requirements-bench.txt); the hand-derived tests in test_loss.py run everywhere.

TRL's KL defaults to a bias-corrected k3 (times the ratio; use_bias_correction_kl=True); ours is plain k3
as OThink-MR1 Eq. 5, so the comparisons set it False. TRL's CISPO takes an absolute cap (epsilon_high = 5
caps the weight at 5), ours the epsilon of 1 + e (clip_high = 4)."""
import pytest
import torch

pytest.importorskip("trl")

from trl_harness import trl_loss_and_grad  # noqa: E402
from vlmrl.algo.loss import cispo, policy_loss, rollout_correction, sequence_clip, token_clip  # noqa: E402
from vlmrl.algo.overlong import Overlong  # noqa: E402

N, L, MAX_TOKENS = 6, 5, 8


def tensors(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    dt = torch.float64
    lengths = torch.tensor([5, 3, 1, 4, 2, 5])
    mask = (torch.arange(L)[None, :] < lengths[:, None]).to(dt)
    old = -torch.rand(N, L, generator=g, dtype=dt) * 2
    logp = old + 0.3 * torch.randn(N, L, generator=g, dtype=dt)           # ratios far enough from 1 to clip
    ref = old + 0.1 * torch.randn(N, L, generator=g, dtype=dt)
    adv = torch.randn(N, generator=g, dtype=dt)
    return dict(logp=logp * mask, old=old * mask, ref=ref * mask, adv=adv, mask=mask)


def ours(t, beta, mask=None, **kwargs):
    logp = t["logp"].clone().requires_grad_()
    loss, _ = policy_loss(logp, t["old"], t["ref"] if beta else None, t["adv"], t["mask"] if mask is None else mask,
                          beta, **kwargs)
    (grad,) = torch.autograd.grad(loss, logp)
    return loss.item(), grad


def theirs(t, beta, **kwargs):
    return trl_loss_and_grad(t["logp"], t["old"], t["ref"], t["adv"], t["mask"], beta=beta,
                             use_bias_correction_kl=False, **kwargs)


# (name, our policy_loss arguments, TRL's arguments)
VARIANTS = [
    ("grpo", dict(surrogate=token_clip, clip_low=0.2, clip_high=0.2, aggregation="sequence_mean"),
     dict(loss_type="grpo", epsilon=0.2)),
    ("dapo", dict(surrogate=token_clip, clip_low=0.2, clip_high=0.28, aggregation="token_mean"),
     dict(loss_type="dapo", epsilon=0.2, epsilon_high=0.28)),
    ("bnpo", dict(surrogate=token_clip, clip_low=0.2, clip_high=0.2, aggregation="token_mean"),
     dict(loss_type="bnpo", epsilon=0.2)),
    ("dr_grpo", dict(surrogate=token_clip, clip_low=0.2, clip_high=0.2, aggregation="constant", max_tokens=MAX_TOKENS),
     dict(loss_type="dr_grpo", epsilon=0.2, max_completion_length=MAX_TOKENS)),
    ("gspo", dict(surrogate=sequence_clip, clip_low=3e-4, clip_high=4e-4, aggregation="sequence_mean"),
     dict(loss_type="grpo", epsilon=3e-4, epsilon_high=4e-4, importance_sampling_level="sequence")),
    ("gspo_wide", dict(surrogate=sequence_clip, clip_low=0.2, clip_high=0.2, aggregation="sequence_mean"),
     dict(loss_type="grpo", epsilon=0.2, importance_sampling_level="sequence")),
    ("cispo", dict(surrogate=cispo, clip_low=None, clip_high=4.0, aggregation="token_mean"),
     dict(loss_type="cispo", epsilon=0.2, epsilon_high=5.0)),
    ("cispo_tight", dict(surrogate=cispo, clip_low=None, clip_high=0.1, aggregation="token_mean"),
     dict(loss_type="cispo", epsilon=0.2, epsilon_high=1.1)),
]


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("name,mine,trl", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_loss_and_gradient_match_trl(name, mine, trl, beta):
    for seed in (0, 1):
        t = tensors(seed)
        loss, grad = ours(t, beta, **mine)
        trl_value, trl_grad = theirs(t, beta, **trl)
        assert loss == pytest.approx(trl_value, abs=1e-6), name
        torch.testing.assert_close(grad, trl_grad, atol=1e-6, rtol=0)


def test_entropy_bonus_matches_trl():
    """TRL's bonus is the masked token mean of H, so it matches our bonus under token_mean (DAPO)."""
    t = tensors()
    entropy = torch.rand(N, L, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    loss, grad = ours(t, 0.04, surrogate=token_clip, clip_low=0.2, clip_high=0.28, aggregation="token_mean",
                      entropy=entropy, entropy_coef=0.01)
    trl_value, trl_grad = theirs(t, 0.04, loss_type="dapo", epsilon=0.2, epsilon_high=0.28, entropy_coef=0.01,
                                 entropies=entropy)
    assert loss == pytest.approx(trl_value, abs=1e-6)
    torch.testing.assert_close(grad, trl_grad, atol=1e-6, rtol=0)


def test_overlong_filtering_matches_trl_mask_truncated_completions():
    t = tensors()
    truncated = torch.tensor([True, False, False, True, False, False])
    _, mask, _ = Overlong(mask=True).apply(torch.zeros(N), t["mask"], truncated, L)
    loss, grad = ours(t, 0.04, mask=mask, surrogate=token_clip, clip_low=0.2, clip_high=0.28, aggregation="token_mean")
    trl_value, trl_grad = theirs(t, 0.04, loss_type="dapo", epsilon=0.2, epsilon_high=0.28,
                                 mask_truncated_completions=True, truncated=truncated)
    assert loss == pytest.approx(trl_value, abs=1e-6)
    torch.testing.assert_close(grad, trl_grad, atol=1e-6, rtol=0)


@pytest.mark.parametrize("level,mode", [("token", "truncate"), ("sequence", "truncate"), ("sequence", "mask"),
                                        ("token", "mask")])
def test_rollout_correction_weights_enter_as_in_trl(level, mode):
    """Our weights (rollout_correction) as TRL's importance_sampling_ratio: the surrogate is weighted, the KL
    is not, in both; and our weights equal TRL's formula for its {token,sequence}_{truncate,mask} modes."""
    t = tensors()
    sampler = t["old"] + 0.2 * torch.randn(N, L, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    sampler = sampler * t["mask"]
    weights, _ = rollout_correction(t["old"], sampler, t["mask"], cap=1.5, level=level, mode=mode)
    d = (t["old"] - sampler) * t["mask"]                                     # TRL's replayed formula
    rho = torch.exp(d) if level == "token" else torch.exp(d.sum(1, keepdim=True))
    rho = rho.clamp(max=1.5) if mode == "truncate" else torch.where(rho > 1.5, torch.zeros_like(rho), rho)
    torch.testing.assert_close(weights * t["mask"], rho.expand(N, L) * t["mask"], atol=1e-12, rtol=0)
    loss, grad = ours(t, 0.04, surrogate=token_clip, clip_low=0.2, clip_high=0.2, aggregation="sequence_mean",
                      token_weights=weights)
    trl_value, trl_grad = theirs(t, 0.04, loss_type="grpo", epsilon=0.2, importance_sampling_ratio=rho,
                                 vllm_importance_sampling_correction=True)
    assert loss == pytest.approx(trl_value, abs=1e-6)
    torch.testing.assert_close(grad, trl_grad, atol=1e-6, rtol=0)
