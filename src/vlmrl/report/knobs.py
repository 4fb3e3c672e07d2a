"""What each swept key of a multirun moves, beyond seed noise: its main effect on each reported metric,
compared within each combination of the other swept keys (a stratum), so another knob's effect never
counts as noise.

- A key of two values: the difference of the second value from the first, averaged over strata; its
  standard error from each stratum's seed variances (Welch), a t interval and a two-sided t test with
  Welch-Satterthwaite degrees of freedom, and the minimum detectable effect (two-sided 5%, power 80%).
- A key of three or more values: the spread of its values' marginal means (largest minus smallest), tested
  by permuting the value labels within each stratum (exact under "the key changes nothing"); the minimum
  detectable effect is that of the two extreme values' difference.

The p-values of every (key, metric) row are Holm-adjusted together; a row "moves" its metric when the
adjusted p is below 5%.
"""
from __future__ import annotations

from itertools import product
from typing import Sequence

import numpy as np

from .inference import ALPHA, PERMUTATIONS, POWER, _quantile, _tail, holm_adjusted, satterthwaite
from .markdown import md_table


def stratified_difference(strata: Sequence[tuple[Sequence[float], Sequence[float]]], alpha: float = ALPHA,
                          power: float = POWER) -> dict | None:
    """strata: [(a's values per seed, b's values per seed)], one pair per stratum -> {diff, lo, hi, se, df, p, mde}
    of mean over strata of (mean b - mean a); None unless every arm of every stratum has two seeds.

    SE^2 = sum_s (var a_s / n_a + var b_s / n_b) / S^2 (sample variances), df by Welch-Satterthwaite over the
    2S variance terms (each with n - 1 df); p two-sided; mde = (t(1 - alpha/2, df) + t(power, df)) SE."""
    strata = [([float(x) for x in a], [float(x) for x in b]) for a, b in strata]
    if not strata or any(len(a) < 2 or len(b) < 2 for a, b in strata):
        return None
    k = len(strata)
    diff = float(np.mean([np.mean(b) - np.mean(a) for a, b in strata]))
    parts = [(np.var(x, ddof=1) / len(x) / k ** 2, len(x) - 1) for a, b in strata for x in (a, b)]
    se = float(np.sqrt(sum(v for v, _ in parts)))
    df = float(satterthwaite([(np.asarray(v), d) for v, d in parts]))
    if se == 0:
        return {"diff": diff, "lo": diff, "hi": diff, "se": 0.0, "df": df, "p": 1.0 if diff == 0 else 0.0, "mde": 0.0}
    half = float(_quantile(1 - alpha / 2, np.asarray(df))) * se
    p = float(2 * _tail(np.asarray(abs(diff) / se), np.asarray(df)))
    mde = float(_quantile(1 - alpha / 2, np.asarray(df)) + _quantile(power, np.asarray(df))) * se
    return {"diff": diff, "lo": diff - half, "hi": diff + half, "se": se, "df": df, "p": min(p, 1.0), "mde": mde}


def marginal_spread(strata: Sequence[Sequence[Sequence[float]]]) -> tuple[float, int, int]:
    """strata [stratum][value] -> per-seed outcomes: (largest - smallest marginal mean, index of the smallest,
    of the largest); a value's marginal mean is the mean over strata of its cell means."""
    means = np.mean([[np.mean(cell) for cell in stratum] for stratum in strata], axis=0)
    return float(means.max() - means.min()), int(means.argmin()), int(means.argmax())


def stratified_permutation_p(strata: Sequence[Sequence[Sequence[float]]], permutations: int = PERMUTATIONS,
                             seed: int = 0) -> float:
    """p of "the key changes nothing" for marginal_spread: value labels reshuffled within each stratum (a
    fixed generator: the same p every time); (1 + #{permuted >= observed}) / (permutations + 1)."""
    observed = marginal_spread(strata)[0]
    rng = np.random.default_rng(seed)
    marginal = 0.0
    for stratum in strata:                                           # [permutations, values] cell means, summed
        x = np.concatenate([np.asarray(c, float) for c in stratum])
        labels = np.repeat(np.arange(len(stratum)), [len(c) for c in stratum])
        shuffled = labels[np.argsort(rng.random((permutations, x.size)), axis=1)]
        marginal = marginal + np.stack([(x * (shuffled == g)).sum(axis=1) / len(c) for g, c in enumerate(stratum)],
                                       axis=1)
    marginal = marginal / len(strata)
    hits = int(np.sum(marginal.max(axis=1) - marginal.min(axis=1) >= observed - 1e-9))
    return float((1 + hits) / (permutations + 1))


def knob_rows(keys: Sequence[str], values: dict[str, list[str]], cells: dict[tuple, dict],
              metrics: Sequence[tuple[str, str]], permutations: int = PERMUTATIONS) -> list[dict]:
    """One row per (swept key, metric) that every cell logged: keys in order; values: {key: its values in
    order}; cells: {cell tuple (a value per key): {metric: [per-seed values]}}; metrics: [(name, label)].
    A row: {key, metric, effect, ci, p, mde, kind} (p None when some arm has fewer than two seeds)."""
    rows = []
    for i, key in enumerate(keys):
        others = [values[k] for j, k in enumerate(keys) if j != i]
        for name, label in metrics:
            strata, ok = [], True
            for rest in product(*others):
                stratum = []
                for v in values[key]:
                    cell = tuple([*rest[:i], v, *rest[i:]])
                    got = (cells.get(cell) or {}).get(name) or []
                    stratum.append(list(got))
                if any(not c for c in stratum):
                    ok = False
                    break
                strata.append(stratum)
            if not ok or not strata:
                continue
            names = values[key]
            if len(names) == 2:
                est = stratified_difference([(s[0], s[1]) for s in strata])
                effect = f"{names[1]} - {names[0]}: " + (f"{est['diff']:+.1f}" if est else "–")
                row = {"ci": f"[{est['lo']:+.1f}, {est['hi']:+.1f}]" if est else "–",
                       "p": est["p"] if est else None, "mde": est["mde"] if est else None, "kind": "Welch"}
            else:
                spread, lo, hi = marginal_spread(strata)
                extremes = stratified_difference([(s[lo], s[hi]) for s in strata])
                enough = all(len(c) >= 2 for s in strata for c in s)
                effect = f"spread {spread:.1f} ({names[lo]} to {names[hi]})" if spread else "spread 0.0 (all equal)"
                row = {"ci": "–", "p": stratified_permutation_p(strata, permutations) if enough else None,
                       "mde": extremes["mde"] if extremes else None, "kind": "permutation"}
            rows.append({"key": key, "metric": label, "effect": effect, **row})
    tested = [r for r in rows if r["p"] is not None]
    for r, adj in zip(tested, holm_adjusted([r["p"] for r in tested])):
        r["holm"] = adj
    return rows


def knob_table(rows: list[dict], alpha: float = ALPHA) -> str:
    """The rows as Markdown, with a sentence saying how each was decided; "" without rows."""
    if not rows:
        return ""
    body = []
    for r in rows:
        holm = r.get("holm")
        verdict = "–" if holm is None else ("**moves it**" if holm < alpha else
                                            "identical on every seed" if r["mde"] == 0 else "within seed noise")
        body.append([r["key"], r["metric"], r["effect"], r["ci"],
                     "–" if r["p"] is None else f"{r['p']:.4f} ({r['kind']})",
                     "–" if holm is None else f"{holm:.4f}", verdict,
                     "–" if r["mde"] is None or (holm is not None and holm < alpha) else f"{r['mde']:.1f}"])
    header = ["swept key", "metric", "effect (points)", "95% CI", "p", "Holm p", "verdict", "MDE (points)"]
    return ("\n\n### What each swept key moves\n\n" + md_table(header, body) +
            "\n\nEach key's main effect, compared within each combination of the other swept keys (so another "
            "key's effect is not counted as noise; report/knobs.py). Two values: the second minus the first, "
            "averaged over those combinations, Welch t interval and test over seeds. Three or more: the spread of "
            "the values' means, a permutation test within the combinations. Holm p: adjusted over every row of "
            f"this table; a key moves a metric when it is below {alpha:g}. MDE (given where a key moves nothing): the "
            "smallest true difference "
            f"(two values, or the two extreme values) found with {POWER:.0%} power at two-sided {alpha:g} "
            "(before Holm) at the measured seed noise: \"within seed noise\" rules out effects that large, not "
            "smaller ones.")
