"""Hand-computed checks of the policy-gradient math (algo/advantages.py, algo/loss.py, algo/overlong.py)."""
import math

import pytest
import torch

from vlmrl.algo import advantages
from vlmrl.algo.loss import (PolicyLoss, cispo, kl_k3, micro_batch_weight, policy_loss, sequence_clip, sequence_mean,
                             token_clip, token_mean)
from vlmrl.algo.overlong import Overlong, soft_overlong_penalty, truncated_rows
from vlmrl.rollout.shared_prefix import token_logprobs, token_logprobs_entropy

# ---------------------------------------------------------------- advantages


def test_grpo_advantages_by_hand():
    # group 1: [1, 0, 0, 1] mean 0.5, unbiased std sqrt(1/3); group 2: [2, 2, 2, 2] all equal -> 0
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = advantages.grpo(rewards, group_size=4)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([a, -a, -a, a, 0.0, 0.0, 0.0, 0.0]))


def test_grpo_advantages_equal_rewards_are_zero_not_nan():
    for fn in (advantages.grpo, advantages.dr_grpo, advantages.rloo, advantages.reinforce_pp):
        assert torch.equal(fn(torch.zeros(6), group_size=3), torch.zeros(6)), fn.__name__


def test_grpo_advantages_match_a_loop():
    torch.manual_seed(0)
    rewards, G = torch.rand(24), 6
    loop = []
    for g in range(0, 24, G):
        r = rewards[g:g + G]
        loop += [((x - r.mean()) / (r.std() + 1e-4)).item() for x in r]
    torch.testing.assert_close(advantages.grpo(rewards, G), torch.tensor(loop))


def test_dr_grpo_rloo_reinforce_pp_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 3.0])
    centred = torch.tensor([0.5, -0.5, -0.5, 0.5, -0.25, -0.25, -0.25, 0.75])
    torch.testing.assert_close(advantages.dr_grpo(rewards, 4), centred)
    # RLOO: r_1 = 1 against the mean of (0, 0, 1) = 1/3 -> 2/3; r_8 = 3 against 2 -> 1
    torch.testing.assert_close(advantages.rloo(rewards, 4), torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3,
                                                                          -1 / 3, -1 / 3, -1 / 3, 1.0]))
    # REINFORCE++-baseline: the centred values over their batch std: sum of squares 1.75 / 7 -> std 0.5
    torch.testing.assert_close(advantages.reinforce_pp(rewards, 4), centred / (0.5 + 1e-4))


def test_rloo_matches_a_leave_one_out_loop():
    torch.manual_seed(1)
    rewards, G = torch.rand(12), 4
    loop = [(rewards[i] - (rewards[i // G * G:i // G * G + G].sum() - rewards[i]) / (G - 1)).item() for i in range(12)]
    torch.testing.assert_close(advantages.rloo(rewards, G), torch.tensor(loop))


@pytest.mark.parametrize("bad", [1, 5])
def test_advantages_reject_a_bad_group_size(bad):
    for fn in (advantages.grpo, advantages.dr_grpo, advantages.rloo, advantages.reinforce_pp):
        with pytest.raises(ValueError, match="group_size"):
            fn(torch.zeros(8), bad)

# ---------------------------------------------------------------- surrogates


def test_kl_k3_by_hand():
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    ref = torch.log(torch.tensor([[0.25, 0.25]]))
    # ratio pi_ref/pi = 0.5 -> 0.5 - log 0.5 - 1 = log 2 - 0.5; ratio 1 -> 0
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([[math.log(2) - 0.5, 0.0]]))


RATIOS = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]]))   # token ratios 1.5 and 0.5 against old_logp = 0


def test_token_clip_symmetric_by_hand():
    obj, parts = token_clip(RATIOS, torch.zeros(2, 2), torch.tensor([2.0, -1.0]), torch.ones(2, 2), 0.2, 0.2)
    # A=2:  min(1.5*2, 1.2*2)=2.4 ; min(0.5*2, 0.8*2)=1.0
    # A=-1: min(-1.5, -1.2)=-1.5  ; min(-0.5, -0.8)=-0.8
    torch.testing.assert_close(obj, torch.tensor([[2.4, 1.0], [-1.5, -0.8]]))
    torch.testing.assert_close(parts["clipped"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_token_clip_higher_by_hand():
    """DAPO's clip-higher: the upper bound 1.28, the lower one still 0.8."""
    obj, parts = token_clip(RATIOS, torch.zeros(2, 2), torch.tensor([2.0, -1.0]), torch.ones(2, 2), 0.2, 0.28)
    torch.testing.assert_close(obj, torch.tensor([[2.56, 1.0], [-1.5, -0.8]]))
    torch.testing.assert_close(parts["clipped"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_sequence_clip_by_hand():
    """GSPO: row 1's ratio is the geometric mean sqrt(1.5 x 0.5) on both tokens; row 2 has one token (1.5)."""
    logp = RATIOS.clone().requires_grad_()
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([2.0, -1.0])
    obj, parts = sequence_clip(logp, torch.zeros(2, 2), adv, mask, 0.2, 0.2)
    s1 = math.sqrt(0.75)
    torch.testing.assert_close(parts["ratio"], torch.tensor([[s1, s1], [1.5, 1.5]]))
    # row 1 inside the clip range: s1 * 2; row 2: min(-1.5, -1.2) = -1.5 (unclipped)
    torch.testing.assert_close(obj * mask, torch.tensor([[2 * s1, 2 * s1], [-1.5, 0.0]]))
    loss = -sequence_mean(obj, mask)                     # -(1/2)(2 s1 - s2)
    loss.backward()
    # d s_i / d logp_i,t = s_i / |o_i|: row 1 -> -(1/2) 2 s1 / 2; row 2 -> (1/2) s2
    torch.testing.assert_close(logp.grad, torch.tensor([[-s1 / 2, -s1 / 2], [0.75, 0.0]]))


def test_sequence_clip_clips_the_whole_completion():
    logp = torch.log(torch.tensor([[2.0, 2.0]])).requires_grad_()
    obj, parts = sequence_clip(logp, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2), 3e-4, 4e-4)
    torch.testing.assert_close(obj.detach(), torch.full((1, 2), 1.0004))
    assert parts["clipped"].tolist() == [[1.0, 1.0]]
    (-obj.mean()).backward()
    assert torch.equal(logp.grad, torch.zeros(1, 2))     # clipped: no gradient, as PPO-clip


def test_cispo_gives_clipped_tokens_a_gradient_by_hand():
    """CISPO: sg[min(ratio, 1.2)] A log pi. The token at ratio 1.5 (clipped) keeps a gradient 1.2 A; PPO-clip
    would give it none."""
    logp = torch.log(torch.tensor([[1.5, 0.5]])).requires_grad_()
    obj, parts = cispo(logp, torch.zeros(1, 2), torch.tensor([2.0]), torch.ones(1, 2), None, 0.2)
    torch.testing.assert_close(obj.detach(), torch.tensor([[1.2 * 2 * math.log(1.5), 0.5 * 2 * math.log(0.5)]]))
    assert parts["clipped"].tolist() == [[1.0, 0.0]]
    (-token_mean(obj, torch.ones(1, 2))).backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-1.2 * 2 / 2, -0.5 * 2 / 2]]))
    ppo_logp = logp.detach().clone().requires_grad_()
    ppo, _ = token_clip(ppo_logp, torch.zeros(1, 2), torch.tensor([2.0]), torch.ones(1, 2), 0.2, 0.2)
    (-token_mean(ppo, torch.ones(1, 2))).backward()
    assert ppo_logp.grad[0, 0] == 0


def test_cispo_at_ratio_one_has_the_gradient_of_grpo():
    torch.manual_seed(0)
    logp = torch.randn(3, 4)
    mask = torch.tensor([[1.0] * 4, [1.0] * 2 + [0.0] * 2, [1.0] + [0.0] * 3])
    adv = torch.tensor([1.0, -0.5, 2.0])
    grads = []
    for surrogate in (token_clip, cispo):
        x = logp.clone().requires_grad_()
        policy_loss(x, x.detach(), None, adv, mask, 0.0, surrogate=surrogate, clip_low=None, clip_high=0.2,
                    aggregation="token_mean")[0].backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])

# ---------------------------------------------------------------- aggregation and the composed loss


def test_sequence_mean_is_token_mean_then_completion_mean():
    values = torch.tensor([[1.0, 3.0, 100.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert sequence_mean(values, mask).item() == pytest.approx((2.0 + 4.0) / 2)
    assert token_mean(values, mask).item() == pytest.approx((1.0 + 3.0 + 4.0) / 3)


ON_POLICY = dict(logp=torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.5]])),
                 ref=torch.log(torch.tensor([[0.25, 0.5], [0.25, 0.5]])),
                 adv=torch.tensor([1.0, -1.0]), mask=torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
K3 = math.log(2) - 0.5


def _on_policy(**kwargs):
    logp = ON_POLICY["logp"].clone().requires_grad_()
    loss, metrics = policy_loss(logp, logp.detach(), ON_POLICY["ref"], ON_POLICY["adv"], ON_POLICY["mask"], 0.1,
                                **kwargs)
    loss.backward()
    return loss.item(), metrics, logp.grad


def test_grpo_loss_on_policy_by_hand():
    # ratio 1 everywhere: loss = -mean_i( mean_t(A_i) - beta * mean_t(k3) )
    loss, metrics, grad = _on_policy()
    expected = -(((1 - 0.1 * K3) + (1 - 0.1 * 0)) / 2 + (-1 - 0) / 1) / 2
    assert loss == pytest.approx(expected, abs=1e-6)  # float32
    assert metrics["kl"] == pytest.approx((K3 / 2 + 0) / 2, rel=1e-6)
    assert metrics["kl_penalty"] == pytest.approx(0.1 * metrics["kl"])
    assert metrics["surrogate_abs"] == pytest.approx(1.0)   # |A| = 1 on every token at ratio 1
    # d/dlogp of -A*ratio/|o|/N at ratio 1: -A/(|o| N); row 1 token 1 also gets +beta*(1 - ref/pi)/(|o| N)
    torch.testing.assert_close(grad, torch.tensor([[-1 / 4 + 0.1 * (1 - 0.5) / 4, -1 / 4], [1 / 2, 0.0]]))


def test_token_mean_aggregation_by_hand():
    """DAPO: the batch's token sum / its 3 tokens; each token's gradient is -A / 3."""
    loss, _, grad = _on_policy(aggregation="token_mean")
    assert loss == pytest.approx(-((1 - 0.1 * K3) + 1 - 1) / 3, abs=1e-6)
    torch.testing.assert_close(grad, torch.tensor([[-1 / 3 + 0.1 * (1 - 0.5) / 3, -1 / 3], [1 / 3, 0.0]]))


def test_constant_aggregation_weighs_every_token_alike_by_hand():
    """Dr. GRPO: token sum / (N * max_tokens). max_tokens 4: loss = -[(1 - 0.1 k3) + 1 + (-1)] / (2 * 4); each
    token's gradient is -A / (N * max_tokens), whatever its completion's length."""
    loss, _, grad = _on_policy(aggregation="constant", max_tokens=4)
    assert loss == pytest.approx(-((1 - 0.1 * K3) + 1 - 1) / 8, abs=1e-6)
    torch.testing.assert_close(grad, torch.tensor([[-1 / 8 + 0.1 * (1 - 0.5) / 8, -1 / 8], [1 / 8, 0.0]]))
    with pytest.raises(ValueError, match="max_tokens"):
        _on_policy(aggregation="constant")
    with pytest.raises(ValueError, match="choose one of"):
        _on_policy(aggregation="median")


def test_policy_loss_needs_ref_when_beta_nonzero():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(x, x, None, torch.ones(1), torch.ones(1, 2), beta=0.1)


@pytest.mark.parametrize("aggregation", ["sequence_mean", "token_mean", "constant"])
def test_micro_batches_sum_to_the_whole_batch(aggregation):
    """The module's weighting (micro_batch_weight) makes the sum over micro-batches the whole batch's loss."""
    torch.manual_seed(0)
    logp, old, ref = torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5)
    mask = (torch.arange(5) < torch.tensor([5, 3, 1, 4, 2, 5]).unsqueeze(1)).float()
    adv = torch.randn(6)
    kwargs = dict(aggregation=aggregation, max_tokens=5)
    whole, _ = policy_loss(logp, old, ref, adv, mask, 0.05, **kwargs)
    parts = sum(policy_loss(logp[sl], old[sl], ref[sl], adv[sl], mask[sl], 0.05, **kwargs)[0]
                * micro_batch_weight(aggregation, mask[sl], 6, float(mask.sum()))
                for sl in (slice(0, 4), slice(4, 6)))
    torch.testing.assert_close(parts, whole)


def test_entropy_is_logged_and_its_bonus_enters_the_gradient():
    logits = torch.zeros(1, 2, 4, requires_grad=True)                      # uniform over 4: entropy log 4
    logp, entropy = token_logprobs_entropy(logits, torch.tensor([[1, 2]]), 1.0, entropy_grad=True)
    torch.testing.assert_close(entropy.detach(), torch.full((1, 2), math.log(4)))
    torch.testing.assert_close(logp, token_logprobs(logits, torch.tensor([[1, 2]]), 1.0))
    assert not token_logprobs_entropy(logits, torch.tensor([[1, 2]]), 1.0)[1].requires_grad   # logged only
    leaf = entropy.detach().requires_grad_()
    mask = torch.tensor([[1.0, 0.0]])
    loss, metrics = policy_loss(logp, logp.detach(), None, torch.ones(1), mask, 0.0, entropy=leaf, entropy_coef=0.1)
    assert metrics["entropy"] == pytest.approx(math.log(4))
    loss.backward()
    torch.testing.assert_close(leaf.grad, torch.tensor([[-0.1, 0.0]]))   # d loss / d H = -coef per masked token
    with pytest.raises(ValueError, match="entropies"):
        policy_loss(logp, logp.detach(), None, torch.ones(1), mask, 0.0, entropy_coef=0.1)


def test_policy_loss_config_rejects_bad_values():
    with pytest.raises(ValueError, match="loss.aggregation"):
        PolicyLoss(token_clip, 0.2, 0.2, "median")
    with pytest.raises(ValueError, match="loss.clip_high"):
        PolicyLoss(token_clip, 0.2, -0.1, "sequence_mean")

# ---------------------------------------------------------------- overlong


def test_truncated_rows_are_those_without_eos():
    ids = torch.tensor([[5, 9, 0], [5, 5, 5], [9, 0, 0]])                 # EOS = 9
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert truncated_rows(ids, mask, eos_id=9).tolist() == [False, True, False]


def test_soft_overlong_penalty_by_hand():
    """DAPO Eq. 13 with L_max 10, L_cache 4: 0 up to 6 tokens, then a ramp down to -1 at 10."""
    torch.testing.assert_close(soft_overlong_penalty(torch.tensor([5, 6, 8, 10]), 10, 4.0),
                               torch.tensor([0.0, 0.0, -0.5, -1.0]))
    with pytest.raises(ValueError, match="cache"):
        soft_overlong_penalty(torch.tensor([5]), 10, 12.0)


def test_overlong_masks_truncated_rows_and_shapes_rewards():
    rewards, mask = torch.tensor([1.0, 1.0]), torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    truncated = torch.tensor([False, True])
    same = Overlong().apply(rewards, mask, truncated, 4)
    assert torch.equal(same[0], rewards) and torch.equal(same[1], mask) and same[2] == {"truncated": 0.5}
    shaped, masked, metrics = Overlong(mask=True, cache_frac=0.5).apply(rewards, mask, truncated, 4)
    torch.testing.assert_close(shaped, torch.tensor([1.0, 0.0]))           # 4 of 4 tokens: -1; 2 of 4: 0
    assert masked.tolist() == [[1.0, 1.0, 0.0, 0.0], [0.0] * 4] and metrics["overlong_penalty"] == -0.5
    with pytest.raises(ValueError, match="cache_frac"):
        Overlong(cache_frac=0.0)
