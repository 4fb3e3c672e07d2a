"""Intervals, tests, verdicts, Holm and power (src/vlmrl/report/inference.py), by hand and by simulation.

The simulations (report/calibration.py) hold the interval to its level: under no true difference a nominal
95% interval may exclude zero in at most 5% of comparisons (within the simulation's own error), over 3, 5 and
10 seeds, seed sd 0-10 points and 300 and 1,000 items; and with a true difference it still finds it.
"""
import numpy as np
import pytest
from scipy import stats as sps

from vlmrl.report.calibration import decision_rate, mc_se, welch
from vlmrl.report.inference import (Estimate, estimate, holm_adjusted, holm_levels, interval, items_for, mde, p_within,
                                    p_zero, seeds_for, verdict)

T975_2 = 4.302652729749462                    # Student t quantiles, df 2
T80_2 = 1.0606601717798212


def seeds_only(d: float, s: float) -> Estimate:
    """a: three seed means d - s, d, d + s (no per-item data); b: a fixed start at 0.
    var(seed means) = s^2, SE = s / sqrt(3), df = 2."""
    return estimate(np.array([[d - s], [d], [d + s]]), np.array([[0.0]]), fixed_b=True)


# ---------------------------------------------------------------- the estimate, by hand

def test_seed_means_alone_give_welchs_interval():
    # seed means 1, 2, 3 against a fixed 0: diff 2, SE sqrt(1 / 3) = 0.57735, df 2,
    # half-width 4.30265 x 0.57735 = 2.48414 -> [-0.48414, 4.48414]
    est = seeds_only(2.0, 1.0)
    assert float(est.diff) == 2.0 and float(est.se) == pytest.approx(0.57735, abs=1e-5)
    assert float(est.df) == pytest.approx(2.0)
    lo, hi = interval(est)
    assert (float(lo), float(hi)) == pytest.approx((-0.48414, 4.48414), abs=1e-5)
    # two-sided p of diff = 0: 2 x P(T_2 > 2 / 0.57735 = 3.4641) = 0.07418
    assert float(p_zero(est)) == pytest.approx(2 * sps.t.sf(3.4641016, 2), abs=1e-6)
    assert float(p_zero(est)) == pytest.approx(0.07418, abs=1e-5)


def test_the_item_term_takes_out_the_seed_by_item_noise_the_seed_terms_hold():
    # a: 2 seeds x 3 items [[1, 1, 0], [1, 0, 0]]; b: a fixed start [[0, 0, 1]].
    # a's seed means 2/3, 1/3: var 1/18 -> seed term 1/36 = 0.027778 (df 1).
    # a's columns 1, 0.5, 0; two-way residuals +-1/6, +-1/3: SS 1/3 over df (2-1)(3-1) = 2 -> se2 = 1/6.
    # per-item difference c = [1, 0.5, -1]: var 13/12 = 1.083333, less se2 / 2 = 1/12 -> Var(w) 1 -> item term 1/3 (df 2).
    # diff 0.5 - 1/3 = 1/6; SE^2 = 1/36 + 1/3 = 0.361111; df = 0.361111^2 / ((1/36)^2 / 1 + (1/3)^2 / 2) = 2.31507
    est = estimate(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0]]), fixed_b=True)
    assert float(est.diff) == pytest.approx(1 / 6)
    assert float(est.var_a) == pytest.approx(1 / 36) and float(est.var_b) == 0.0
    assert float(est.se2_a) == pytest.approx(1 / 6) and float(est.sw2) == pytest.approx(1.0)
    assert float(est.var_items) == pytest.approx(1 / 3)
    assert float(est.se) ** 2 == pytest.approx(0.361111, abs=1e-6)
    assert float(est.df) == pytest.approx(2.31507, abs=1e-4)


def test_pairing_cancels_item_difficulty():
    # two fixed arms, b = a - 5 on every item; items vary wildly (0..100): the difference is exactly 5, SE 0
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, size=(1, 200))
    est = estimate(a, a - 5, fixed_a=True, fixed_b=True)
    assert float(est.diff) == pytest.approx(5) and float(est.se) == pytest.approx(0, abs=1e-9)
    assert tuple(map(float, interval(est))) == pytest.approx((5, 5))
    # b's items shuffled: the same means, but item difficulty no longer cancels
    lo, hi = interval(estimate(a, rng.permutation(a[0])[None] - 5, fixed_a=True, fixed_b=True))
    assert float(hi - lo) > 10


def test_one_trained_seed_has_no_interval_and_bad_shapes_fail():
    est = estimate(np.ones((1, 5)), np.zeros((2, 5)))
    assert np.isnan(float(est.se)) and np.isnan(float(interval(est)[0]))      # its seed noise is unknown
    with pytest.raises(ValueError, match="same items"):
        estimate(np.zeros((2, 5)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match="one row"):
        estimate(np.zeros((2, 5)), fixed_a=True)


def test_constant_outcomes_give_a_point_interval():
    est = estimate(np.full((3, 50), 0.7))
    assert tuple(map(float, interval(est))) == pytest.approx((0.7, 0.7))


def test_a_single_arm_mean_covers_the_truth_about_95_percent():
    # 3 seeds x 100 Bernoulli(0.6 + seed shift) items: the mean's interval holds 0.6 in >= 93% of 1,000 trials
    rng = np.random.default_rng(0)
    shift = rng.normal(0, 0.03, size=(1000, 3, 1))
    m = (rng.random((1000, 3, 100)) < 0.6 + shift).astype(float)
    lo, hi = interval(estimate(m))
    assert 0.93 <= float(np.mean((lo <= 0.6) & (0.6 <= hi))) <= 0.99


# ---------------------------------------------------------------- verdicts with a minimum effect

@pytest.mark.parametrize("d, s, expect, delta, word", [
    # half-width 2.48414 x s (seeds_only): the interval is d -+ 2.484 s
    (5.0, 1.0, ">", 2, "agrees"),                  # [2.52, 7.48]: excludes 0, 5 >= 2
    (5.0, 1.0, "<", 2, "contradicts"),
    (-5.0, 1.0, ">", 2, "contradicts"),
    (1.5, 0.2, ">", 2, "too small to matter"),     # [1.00, 2.00]: excludes 0, but 1.5 < 2
    (-1.5, 0.2, ">", 2, "too small to matter"),    # significant the other way, as small
    (0.5, 0.5, ">", 2, "too small to matter"),     # [-0.74, 1.74]: holds 0, inside +-2 (no effect that matters)
    (1.0, 2.0, ">", 2, "inconclusive"),            # [-3.97, 5.97]
    (1.5, 0.2, ">", 0, "agrees"),                  # no minimum effect: any significant difference
    (0.5, 0.5, "~", 2, "agrees"),                  # inside +-2
    (5.0, 1.0, "~", 2, "contradicts"),             # excludes 0 by >= 2
    (1.5, 0.5, "~", 2, "inconclusive"),            # [0.26, 2.74]: excludes 0 by less, not inside +-2
    (1.0, 2.0, "~", 2, "inconclusive"),
])
def test_verdicts(d, s, expect, delta, word):
    assert verdict(seeds_only(d, s), expect, delta) == word


def test_equivalence_p_matches_the_interval():
    # [1.00, 2.00] (d 1.5, s 0.2): inside +-2.01 (p < 0.05), not inside +-1.99
    est = seeds_only(1.5, 0.2)
    lo, hi = map(float, interval(est))
    assert float(p_within(est, hi + 0.01)) < 0.05 < float(p_within(est, hi - 0.01))
    assert float(p_within(est, 0.0)) == 1.0
    with pytest.raises(ValueError, match="expect"):
        verdict(est, ">=", 1.0)


# ---------------------------------------------------------------- Holm

def test_holm_adjusted_p_and_levels_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.20 (m = 4): 4 x 0.01 = 0.04; 3 x 0.03 = 0.09; max(0.09, 2 x 0.04) = 0.09; 0.20
    p = [0.01, 0.04, 0.03, 0.20]
    assert holm_adjusted(p) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    # 0.01 < 0.05 / 4 passes at 0.0125; 0.03 >= 0.05 / 3 stops: it and every larger p are decided at 0.016667
    assert holm_levels(p) == pytest.approx([0.0125, 0.05 / 3, 0.05 / 3, 0.05 / 3])
    for q, level, adj in zip(p, holm_levels(p), holm_adjusted(p)):
        assert (q < level) == (adj < 0.05)


def test_holm_keeps_a_single_claim_at_its_level():
    assert holm_adjusted([0.03]) == [0.03] and holm_levels([0.03]) == [0.05]


# ---------------------------------------------------------------- power

def test_minimum_detectable_effect_by_hand_and_the_seeds_that_reach_an_effect():
    # seeds only, s = 1: SE = 1 / sqrt(3), df 2 -> MDE = (4.30265 + 1.06066) / sqrt(3) = 3.09651
    est = seeds_only(1.0, 1.0)
    assert mde(est) == pytest.approx((T975_2 + T80_2) / np.sqrt(3), abs=1e-5)
    k = seeds_for(est, 2.0)
    assert k is not None and mde(est, seeds=k) <= 2.0 < mde(est, seeds=k - 1)
    # the untrained start has no seed noise to shrink: an arm of seed noise alone reaches any effect, an item
    # term alone (two fixed arms) none
    rng = np.random.default_rng(0)
    fixed = estimate(rng.random((1, 40)), rng.random((1, 40)), fixed_a=True, fixed_b=True)
    assert seeds_for(fixed, 0.01) is None
    # ... but items do: the fewest items whose MDE reaches the effect, and no fewer
    n = items_for(fixed, 0.2, seeds=10)
    assert n is not None and mde(fixed, items=n) <= 0.2 < mde(fixed, items=n - 1)
    assert items_for(est, 2.0, seeds=10) is None                               # runs without per-item outcomes


# ---------------------------------------------------------------- simulation: level and power

REPS = 2000
GRID = [(s, n, sd) for s in (3, 5, 10) for n in (300, 1000) for sd in (0, 4, 8, 10)]


def test_false_decisions_stay_at_the_level_with_few_seeds():
    """No true difference: each cell's share of 95% intervals excluding 0 is at most 5% plus 3 simulation SEs,
    and over all 24 cells at most 5% plus 2 SEs of the pooled rate."""
    rng = np.random.default_rng(36)
    rates = {cell: decision_rate(welch, rng, REPS, *cell) for cell in GRID}
    worst = max(rates, key=rates.get)
    assert rates[worst] <= 0.05 + 3 * mc_se(0.05, REPS), f"seeds, items, seed sd {worst}: {rates[worst]:.3f}"
    pooled = float(np.mean(list(rates.values())))
    assert pooled <= 0.05 + 2 * mc_se(0.05, REPS * len(GRID)), pooled


def test_a_true_difference_is_still_found():
    """10 points at 5 seeds x 300 items, seed sd 4: SE about 3.1 points (2 (0.04^2 + 0.22 / 300) / 5 +
    0.1^2 / 300), an MDE near 10 (power about 80%); at 15 points the interval finds it nearly always."""
    rng = np.random.default_rng(7)
    at10 = decision_rate(welch, rng, REPS, 5, 300, 4, diff=10.0)
    at15 = decision_rate(welch, rng, REPS, 5, 300, 4, diff=15.0)
    assert 0.70 <= at10 <= 0.92 and at15 >= 0.95, (at10, at15)
