"""report/knobs.py: a swept key's main effect within the other keys' combinations, hand-computed."""
import numpy as np
import pytest

from vlmrl.report.knobs import knob_rows, knob_table, marginal_spread, stratified_difference, stratified_permutation_p


def test_stratified_difference_by_hand():
    # stratum 1: a {1, 3}, b {4, 6} -> 3; stratum 2: a {2, 4}, b {7, 9} -> 5; diff (3 + 5) / 2 = 4
    # every sample variance 2, / n 2 = 1, / S^2 4 = 0.25 each, four terms: SE 1; df 1 / (4 x 0.25^2 / 1) = 4
    # t(0.975, 4) 2.7764 -> [1.224, 6.776]; p = 2 P(T_4 > 4) = 0.01613; MDE (2.7764 + t(0.8, 4) 0.9410) x 1 = 3.717
    est = stratified_difference([([1, 3], [4, 6]), ([2, 4], [7, 9])])
    assert est["diff"] == 4.0 and est["se"] == 1.0 and est["df"] == pytest.approx(4.0)
    assert (est["lo"], est["hi"]) == pytest.approx((1.2236, 6.7764), abs=1e-4)
    assert est["p"] == pytest.approx(0.01613, abs=1e-5) and est["mde"] == pytest.approx(3.7174, abs=1e-4)
    assert stratified_difference([([1], [4, 6])]) is None                  # one seed: no seed noise known
    flat = stratified_difference([([100, 100], [100, 100])])
    assert flat["p"] == 1.0 and flat["mde"] == 0.0


def test_another_keys_effect_is_not_counted_as_noise():
    # b - a is +1 in both strata (seeds 0.1 apart), but the strata sit 50 points apart: pooled over strata the
    # difference would drown in that spread; within strata it is clear
    strata = [([10.0, 10.1], [11.0, 11.1]), ([60.0, 60.1], [61.0, 61.1])]
    est = stratified_difference(strata)
    assert est["diff"] == pytest.approx(1.0) and est["lo"] > 0.5


def test_marginal_spread_and_its_permutation_test():
    # values 0 / 5 / 10 (+1 in the second stratum): marginal means 0.5, 5.5, 10.5
    strata = [[[0, 0], [5, 5], [10, 10]], [[1, 1], [6, 6], [11, 11]]]
    assert marginal_spread(strata) == (10.0, 0, 2)
    # separated values: of the 6! / 2!^3 = 90 labellings of each stratum, 6 keep the pairs together (3! ways to give
    # them labels), and the spread is reached only when the second stratum gives its pairs the same labels as the
    # first (1 in 90): p = 6 / 90^2 = 0.00074 (+ 1 / 10,000 for the observed labelling; from 9,999 shuffles)
    assert stratified_permutation_p(strata) == pytest.approx(6 / 90 ** 2, abs=0.0005)
    # no effect: labels exchangeable, p large
    noise = [[[0, 5], [5, 0], [2, 3]], [[1, 4], [4, 1], [3, 2]]]
    assert stratified_permutation_p(noise) > 0.5
    # calibration under no effect: p < 0.05 in about 5% of 300 knobs (3 values x 3 seeds, 2 strata)
    rng = np.random.default_rng(0)
    rate = np.mean([stratified_permutation_p([[list(rng.normal(s * 20, 4, 3)) for _ in range(3)] for s in range(2)],
                                             permutations=199, seed=i) < 0.05 for i in range(300)])
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300), rate


def test_knob_rows_decide_each_key_within_the_other_and_holm_adjust():
    # kl in {dynamic, constant} x format_w in {0, 0.5, 1}, 3 seeds: format moves the format rate 0 -> 100; kl nothing
    values = {"kl": ["dynamic", "constant"], "reward.format_w": ["0", "0.5", "1"]}
    seeds = {"dynamic": [0.0, 1.0, -1.0], "constant": [0.5, -0.5, 0.0]}
    cells = {(kl, w): {"format": [100.0 * (w != "0") + e for e in seeds[kl]]}
             for kl in values["kl"] for w in values["reward.format_w"]}
    rows = knob_rows(["kl", "reward.format_w"], values, cells, [("format", "end format (%)")], permutations=999)
    kl, fw = rows
    # kl: constant - dynamic in each of 3 strata = 0 - 0 = 0; variances 1 (dynamic) and 0.25 (constant), / 3 seeds
    # / 9 strata^2 summed over 3 strata: SE sqrt(3 x (1/3 + 0.25/3) / 9) = 0.3727
    assert kl["effect"] == "constant - dynamic: +0.0" and kl["p"] == pytest.approx(1.0)
    assert kl["mde"] > 0 and kl["holm"] == pytest.approx(1.0)
    assert fw["effect"] == "spread 100.0 (0 to 0.5)" and fw["p"] < 0.01 and fw["holm"] < 0.05
    table = knob_table(rows)
    assert "| reward.format_w | end format (%) | spread 100.0 (0 to 0.5) |" in table and "**moves it**" in table
    assert "| kl | end format (%) | constant - dynamic: +0.0 |" in table and "within seed noise" in table
    flat = knob_rows(["kl", "reward.format_w"], values, {c: {"format": [50.0] * 3} for c in cells},
                     [("format", "end format (%)")], permutations=99)
    assert [r["effect"] for r in flat] == ["constant - dynamic: +0.0", "spread 0.0 (all equal)"]
    assert knob_table(flat).count("identical on every seed") == 2
    # a cell with one seed: no test, no verdict
    one = {cell: {"format": v["format"][:1]} for cell, v in cells.items()}
    rows = knob_rows(["kl", "reward.format_w"], values, one, [("format", "end format (%)")], permutations=99)
    assert all(r["p"] is None for r in rows) and "| – | – | – |" in knob_table(rows)
