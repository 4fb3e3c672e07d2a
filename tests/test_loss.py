"""Hand-computed checks of the GRPO math (algo/loss.py)."""
import math

import pytest
import torch

from vlmrl.algo.loss import clipped_surrogate, group_advantages, grpo_loss, kl_k3, sequence_mean


def test_group_advantages_by_hand():
    # group 1: [1, 0, 0, 1] mean 0.5, unbiased std sqrt(1/3); group 2: [2, 2, 2, 2] all equal -> 0
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = group_advantages(rewards, group_size=4)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([a, -a, -a, a, 0.0, 0.0, 0.0, 0.0]))


def test_group_advantages_equal_rewards_are_zero_not_nan():
    adv = group_advantages(torch.zeros(6), group_size=3)
    assert torch.equal(adv, torch.zeros(6))


def test_group_advantages_matches_loop():
    torch.manual_seed(0)
    rewards, G = torch.rand(24), 6
    loop = []
    for g in range(0, 24, G):
        r = rewards[g:g + G]
        loop += [((x - r.mean()) / (r.std() + 1e-4)).item() for x in r]
    torch.testing.assert_close(group_advantages(rewards, G), torch.tensor(loop))


@pytest.mark.parametrize("bad", [1, 5])
def test_group_advantages_rejects_bad_group_size(bad):
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(8), bad)


def test_kl_k3_by_hand():
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    ref = torch.log(torch.tensor([[0.25, 0.25]]))
    # ratio pi_ref/pi = 0.5 -> 0.5 - log 0.5 - 1 = log 2 - 0.5; ratio 1 -> 0
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([[math.log(2) - 0.5, 0.0]]))


def test_clipped_surrogate_by_hand():
    old = torch.zeros(2, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]]))  # ratios 1.5 and 0.5
    adv = torch.tensor([2.0, -1.0])
    obj, parts = clipped_surrogate(logp, old, adv, clip_eps=0.2)
    # A=2:  min(1.5*2, 1.2*2)=2.4 ; min(0.5*2, 0.8*2)=1.0
    # A=-1: min(-1.5, -1.2)=-1.5  ; min(-0.5, -0.8)=-0.8
    torch.testing.assert_close(obj, torch.tensor([[2.4, 1.0], [-1.5, -0.8]]))
    torch.testing.assert_close(parts["clipped"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_sequence_mean_is_token_mean_then_completion_mean():
    values = torch.tensor([[1.0, 3.0, 100.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert sequence_mean(values, mask).item() == pytest.approx((2.0 + 4.0) / 2)


def test_grpo_loss_on_policy_by_hand():
    # ratio 1 everywhere: loss = -mean_i( mean_t(A_i) - beta * mean_t(k3) )
    logp = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.5]])).requires_grad_()
    ref = torch.log(torch.tensor([[0.25, 0.5], [0.25, 0.5]]))
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, metrics = grpo_loss(logp, logp.detach(), ref, adv, mask, beta=0.1, clip_eps=0.2)
    k3 = math.log(2) - 0.5
    expected = -(((1 - 0.1 * k3) + (1 - 0.1 * 0)) / 2 + (-1 - 0) / 1) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)  # float32
    assert metrics["kl"] == pytest.approx((k3 / 2 + 0) / 2, rel=1e-6)
    assert metrics["kl_penalty"] == pytest.approx(0.1 * metrics["kl"])
    assert metrics["surrogate_abs"] == pytest.approx(1.0)   # |A| = 1 on every token at ratio 1
    loss.backward()
    # d/dlogp of -A*ratio/|o|/N at ratio 1: -A/(|o| N); row 1 token 1 also gets +beta*(1 - ref/pi)/(|o| N)
    expected_grad = torch.tensor([[-1 / 4 + 0.1 * (1 - 0.5) / 4, -1 / 4], [1 / 2, 0.0]])
    torch.testing.assert_close(logp.grad, expected_grad)


def test_grpo_loss_needs_ref_when_beta_nonzero():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(x, x, None, torch.ones(1), torch.ones(1, 2), beta=0.1, clip_eps=0.2)


def test_constant_aggregation_weighs_every_token_alike_by_hand():
    """Dr. GRPO: token sum / (N * max_tokens). Same rows as the on-policy test, max_tokens 4:
    loss = -[(1 - 0.1 k3) + 1 + (-1)] / (2 * 4); each token's gradient is -A / (N * max_tokens),
    whatever its completion's length (sequence_mean gives the 1-token row twice the 2-token row's)."""
    logp = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.5]])).requires_grad_()
    ref = torch.log(torch.tensor([[0.25, 0.5], [0.25, 0.5]]))
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, _ = grpo_loss(logp, logp.detach(), ref, adv, mask, beta=0.1, clip_eps=0.2, aggregation="constant",
                        max_tokens=4)
    k3 = math.log(2) - 0.5
    assert loss.item() == pytest.approx(-((1 - 0.1 * k3) + 1 - 1) / 8, abs=1e-6)
    loss.backward()
    expected_grad = torch.tensor([[-1 / 8 + 0.1 * (1 - 0.5) / 8, -1 / 8], [1 / 8, 0.0]])
    torch.testing.assert_close(logp.grad, expected_grad)
    with pytest.raises(ValueError, match="max_tokens"):
        grpo_loss(logp, logp.detach(), ref, adv, mask, 0.1, 0.2, aggregation="constant")
    with pytest.raises(ValueError, match="choose one of"):
        grpo_loss(logp, logp.detach(), ref, adv, mask, 0.1, 0.2, aggregation="token_mean")
