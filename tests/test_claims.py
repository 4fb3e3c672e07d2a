"""Intervals, verdicts and the claims table (report/stats.py, report/claims.py), and the summary of any
multirun dir (report/sweep.py), on synthetic run dirs written as the trainer and evaluate.py write them.

Expected values are worked out by hand in each test's comment.
"""
import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from vlmrl.report import report
from vlmrl.report.claims import CLAIMS, Arm, Claim, build_claims, decide, load_claims
from vlmrl.report.runs import load_run
from vlmrl.report.stats import bootstrap_mean, knob_spread, paired_bootstrap, verdict

REPO = Path(__file__).resolve().parents[1]
PAPERS = REPO.parent / "shared" / "papers.md"


# ---------------------------------------------------------------- stats

def test_constant_values_give_a_point_interval():
    # every item of every seed is 0.7: every resample's mean is 0.7
    assert bootstrap_mean(np.full((3, 50), 0.7)) == pytest.approx((0.7, 0.7, 0.7))


def test_pairing_cancels_item_difficulty():
    # b = a - 5 on every item; items vary wildly (0..100), one seed each: every paired resample differs by exactly 5
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, size=(1, 200))
    diff, lo, hi = paired_bootstrap(a, a - 5)
    assert (diff, lo, hi) == pytest.approx((5, 5, 5))
    # unpaired (b's items shuffled) the same means give a wide interval: pairing is what made it narrow
    _, lo_u, hi_u = paired_bootstrap(a, rng.permutation(a[0])[None] - 5)
    assert hi_u - lo_u > 10


def test_seed_only_interval():
    # one "item" (per-seed means): arm a seeds {0, 1}, arm b {0, 0}. A seed resample of a has mean 0 (p 1/4),
    # 0.5 (1/2) or 1 (1/4), so the 2.5% / 97.5% quantiles are 0 and 1; the point estimate is 0.5
    diff, lo, hi = paired_bootstrap(np.array([[0.0], [1.0]]), np.array([[0.0], [0.0]]))
    assert (diff, lo, hi) == (0.5, 0.0, 1.0)


def test_interval_covers_the_truth_about_95_percent():
    # 3 seeds x 100 Bernoulli(0.6) items with a per-seed shift: the 95% interval should hold 0.6 in ~95% of trials
    rng = np.random.default_rng(0)
    hits = 0
    for t in range(200):
        shift = rng.normal(0, 0.03, size=(3, 1))
        m = (rng.random((3, 100)) < 0.6 + shift).astype(float)
        _, lo, hi = bootstrap_mean(m, boot=400, seed=t)
        hits += lo <= 0.6 <= hi
    assert 0.85 <= hits / 200 <= 0.995


def test_paired_arms_need_the_same_items():
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap(np.zeros((2, 5)), np.zeros((2, 6)))


@pytest.mark.parametrize("lo, hi, expect, margin, word", [
    (0.5, 2.0, ">", 0, "agrees"), (-2.0, -0.5, ">", 0, "contradicts"), (-0.5, 2.0, ">", 0, "inconclusive"),
    (-2.0, -0.5, "<", 0, "agrees"), (0.5, 2.0, "<", 0, "contradicts"),
    (-1.0, 1.5, "~", 2, "agrees"), (2.5, 4.0, "~", 2, "contradicts"), (1.0, 3.0, "~", 2, "inconclusive"),
])
def test_verdicts(lo, hi, expect, margin, word):
    assert verdict(lo, hi, expect, margin) == word


# ---------------------------------------------------------------- claims on synthetic run dirs

IDS = [f"counting-{i:03d}" for i in range(200)]


def write_trained(root: Path, name: str, method: str, seed: int, acc: list, data="counting", result="table1",
                  extra_cfg=None, overrides=None):
    """A trained run dir with test_items.json (each item's end accuracy) and the matching results.json."""
    run = root / name
    run.mkdir(parents=True)
    cfg = {"seed": seed, "study": {"paper": "othink_mr1", "result": result, "method": method}, "data": {"name": data},
           "algo": {"steps": 10}, **(extra_cfg or {})}
    OmegaConf.save(OmegaConf.create(cfg), run / "config_resolved.yaml")
    end = {"id": IDS[:len(acc)], "task": [data] * len(acc), "acc": acc, "format": [1.0] * len(acc),
           "completion_len": [20.0] * len(acc)}
    (run / "test_items.json").write_text(json.dumps({"start": end, "end": end}))
    mean = float(np.mean(acc))
    (run / "results.json").write_text(json.dumps({"start": {"test/acc": 0.1}, "end": {
        "test/acc": mean, "test/format": 1.0, "test/completion_len": 20.0}, "steps": 10}))
    if overrides is not None:
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return run


def outcomes(p: float, seed: int, n: int = 60) -> list:
    """n items, the first round(p n) right: seeds differ by which items (rolled by `seed`)."""
    right = int(round(p * n))
    return np.roll([1.0] * right + [0.0] * (n - right), seed).tolist()


def claim(a_method="grpo_d", b_method="grpo", expect=">") -> Claim:
    return Claim("c", "othink_mr1", "Table 1", "a beats b", "acc", Arm({"result": "table1", "method": a_method,
                 "data": "counting"}, "counting"), Arm({"result": "table1", "method": b_method, "data": "counting"},
                 "counting"), expect)


@pytest.fixture
def arms(tmp_path):
    for seed in range(3):
        write_trained(tmp_path, f"d{seed}", "grpo_d", seed, outcomes(0.9, seed))
        write_trained(tmp_path, f"g{seed}", "grpo", seed, outcomes(0.5, seed))
        write_trained(tmp_path, f"s{seed}", "sft", seed, outcomes(0.5, seed + 7))
    write_trained(tmp_path, "one", "base", 0, outcomes(0.2, 0))
    return [load_run(p) for p in sorted(tmp_path.iterdir())]


def test_a_clear_gap_is_decided_both_ways(arms):
    # 90% vs 50% on 60 items x 3 seeds: the difference is 40 points, far outside item noise
    agrees = decide(arms, claim())
    assert agrees.verdict == "agrees" and agrees.paired_items
    assert agrees.diff == pytest.approx(40.0) and 20 < agrees.lo < 40 < agrees.hi < 60
    assert agrees.a.shape == (3, 60)
    assert decide(arms, claim(expect="<")).verdict == "contradicts"


def test_equal_arms_are_inconclusive(arms):
    # grpo and sft: both 50% right, on different items
    d = decide(arms, claim("sft", "grpo"))
    assert d.diff == pytest.approx(0.0) and d.lo < 0 < d.hi and d.verdict == "inconclusive"


def test_one_seed_is_not_decided_and_no_runs_is_not_run(arms):
    one = Claim("c", "othink_mr1", "T1", "a beats base", "acc", Arm({"result": "table1", "method": "grpo_d"}, "counting"),
                Arm({"result": "table1", "method": "base"}, "counting"), ">")
    d = decide(arms, one)
    assert d.verdict.startswith("too few seeds") and d.lo > 0          # the interval is shown, the verdict withheld
    none = claim("grpo_d", "nonexistent")
    assert decide(arms, none).verdict == "not run"


def test_an_untrained_start_counts_whole_with_one_run_and_pairs_its_items(arms, tmp_path):
    """evaluate.py run=base (no results.json): a greedy evaluation of a fixed start is the same for every seed,
    so one run decides its arm; its eval items pair with the trained runs' test items by id."""
    base = tmp_path / "base_eval"
    (base / "eval").mkdir(parents=True)
    acc = outcomes(0.2, 0)
    OmegaConf.save(OmegaConf.create({"study": {"paper": "othink_mr1", "result": "table1", "method": "untrained"}}),
                   base / "config_resolved.yaml")
    (base / "eval" / "cross_task.json").write_text(json.dumps({"results": {"counting": {
        "acc": float(np.mean(acc)), "items": {"id": IDS[:len(acc)], "acc": acc}}}}))
    one = Claim("c", "othink_mr1", "T1", "a beats base", "acc", Arm({"result": "table1", "method": "grpo_d"}, "counting"),
                Arm({"result": "table1", "method": "untrained"}, "counting"), ">")
    d = decide([*arms, load_run(base)], one)
    assert d.verdict == "agrees" and d.paired_items and d.b.shape == (1, 60)


def test_claims_table_has_a_verdict_per_claim(arms):
    artifact = build_claims(arms, [claim(), claim("sft", "grpo"), claim("grpo_d", "nonexistent")])
    rows = [line for line in artifact.markdown.splitlines() if line.startswith("| c ")]
    assert [r.rstrip(" |").rsplit("| ", 1)[1] for r in rows] == ["agrees", "inconclusive", "not run"]
    assert "+40.0 [" in rows[0] and "90.0 ± 0.0 (n=3)" in rows[0]


def test_claims_file_loads_and_cites_the_papers():
    claims = load_claims(CLAIMS)
    assert len(claims) >= 20
    text = PAPERS.read_text() if PAPERS.is_file() else None
    for c in claims:
        assert c.expect in (">", "<", "~") and c.paper in ("othink_mr1", "vision_r1")
        for arm in (c.a, c.b):
            if arm.paper is not None and text is not None:
                number = f"{arm.paper:g}"
                assert re.search(rf"(?<![\d.]){re.escape(number)}(0*)(?![\d])", text), (c.id, number)


def test_claims_select_runs_the_experiments_make():
    # each selector's study (result, method) is one some experiment (or an eval-only config) sets
    studies = set()
    for path in (REPO / "experiments").rglob("*.yaml"):
        study = (yaml.safe_load(path.read_text()) or {}).get("study")
        if study:
            studies.add((study["result"], study["method"]))
    for c in load_claims(CLAIMS):
        for arm in (c.a, c.b):
            result, method = arm.select["result"], arm.select.get("method")
            assert any(r == result and (method is None or m == method) for r, m in studies), (c.id, result, method)


def test_knob_spread_against_seed_noise():
    # a: mean 50, std 2 (48, 50, 52) -> SE 2/sqrt(3) = 1.155; b: mean 54, std 1 (53, 54, 55) -> SE 0.577
    # spread 4.0 > 2 x 1.155 = 2.3: more than seed noise
    text = knob_spread({"a": [48, 50, 52], "b": [53, 54, 55]})
    assert text == "spread 4.0 points (a 50.0 to b 54.0), 2 x the largest seed SE 2.3: more than seed noise"
    # b at 51: spread 1.0 < 2.3: within
    assert knob_spread({"a": [48, 50, 52], "b": [50, 51, 52]}).endswith("2.3: within seed noise")
    # an untrained start (one value) adds a cell but no noise estimate
    assert knob_spread({"base": [40], "a": [48, 50, 52]}).startswith("spread 10.0 points (base 40.0 to a 50.0)")
    assert knob_spread({"base": [40], "b": [50]}) == "no value of the knob has two seeds: no seed noise to compare with"
    assert knob_spread({"a": [1, 2]}) == "fewer than two values of the knob ran"


# ---------------------------------------------------------------- any multirun

def test_any_multirun_is_summarised_by_its_swept_keys(tmp_path):
    # 2 x 3 cells x 2 seeds; accuracy = 50 + 10 * format_w (+ 10 for kl=constant), seeds 1 point apart
    sweep = tmp_path / "multirun" / "abl"
    sweep.mkdir(parents=True)                          # declared order: dynamic first, as on the command line
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - kl=dynamic,constant\n    - reward.format_w=0,0.5,1\n    - seed=0,1\n")
    n = 0
    for kl in ("dynamic", "constant"):
        for w in ("0", "0.5", "1"):
            for seed in (0, 1):
                p = 0.5 + 0.1 * float(w) + (0.1 if kl == "constant" else 0.0) + 0.01 * seed
                run = write_trained(sweep, f"{n}_cell", "x", seed, outcomes(p, seed, 100), overrides=[
                    f"kl={kl}", f"reward.format_w={w}", f"seed={seed}"])
                (run / "metrics.jsonl").write_text("".join(json.dumps(
                    {"step": s, "train/acc": p * s / 9, "train/completion_len": 20.0 + s, "train/entropy": 1.0 - p})
                    + "\n" for s in range(10)))
                n += 1
    for run in sweep.iterdir():                        # a user's sweep carries no study
        if run.is_dir():
            cfg = OmegaConf.load(run / "config_resolved.yaml")
            cfg.study = None
            OmegaConf.save(cfg, run / "config_resolved.yaml")
    written = report([sweep])                          # default --out: <dir>/report
    out = sweep / "report"
    assert out / "sweep_abl.md" in written and out / "sweep_abl.png" in written
    table = (out / "sweep_abl.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| dynamic") or line.startswith("| constant")]
    assert len(rows) == 6
    # kl=constant, format_w=0.5: seeds 65% and 66% right -> 65.5 ± 0.7 (sample std of {65, 66})
    assert any(r.startswith("| constant | 0.5 | 2 |") and "65.5 ± 0.7" in r for r in rows), rows
    # rows in the declared order; kl=constant, 0.5 (65.5) minus the first row, kl=dynamic, 0 (50.5): +15.0
    assert rows[0].startswith("| dynamic | 0 | 2 |") and "(first row)" in rows[0], rows
    assert rows[3].startswith("| constant | 0 | 2 |"), rows
    diff, lo, hi = map(float, re.search(r"\| ([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\] \|", rows[4]).groups())
    assert rows[4].startswith("| constant | 0.5 | 2 |") and diff == 15.0 and 0 < lo < diff < hi, rows[4]
    # end train entropy 1 - p: 0.35 and 0.34 -> 0.345 ± 0.007, the last column
    assert "| end train entropy (nats) |" in table
    assert any(r.startswith("| constant | 0.5 | 2 |") and r.endswith("| 0.345 ± 0.007 |") for r in rows), rows
    for row in rows:                                   # the interval holds the mean, from the same items
        mean, lo, hi = map(float, re.search(r"\| ([\d.]+) ± [\d.]+ \| \[([\d.]+), ([\d.]+)\]", row).groups())
        assert lo <= mean <= hi and hi - lo < 25, row
    assert matplotlib.image.imread(out / "sweep_abl.png").shape[0] > 100
    # the training curves of every cell (train accuracy, length, entropy), one figure
    assert out / "sweep_abl_curves.png" in written
    assert matplotlib.image.imread(out / "sweep_abl_curves.png").shape[1] > 500


def test_report_cli_default_out_and_no_swept_key(tmp_path, capsys):
    sweep = tmp_path / "one"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    for seed in (0, 1):
        run = write_trained(sweep, f"{seed}_s", "x", seed, outcomes(0.5, seed), overrides=[f"seed={seed}"])
        cfg = OmegaConf.load(run / "config_resolved.yaml")
        cfg.study = None
        OmegaConf.save(cfg, run / "config_resolved.yaml")
    report([sweep])
    assert "no key differs between its runs" in capsys.readouterr().out
    assert (sweep / "report" / "README.md").is_file()


# ---------------------------------------------------------------- the prose quotes the committed verdicts

def committed_claims() -> dict[str, tuple[str, str]]:
    """{claim id: (ours a - b [95% CI], verdict)} from the committed tiny reproduction's claims.md."""
    rows = [line.split(" | ") for line in (REPO / "docs/results/tiny/claims.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| id ", "|---"))]
    return {r[0].lstrip("| "): (r[-3], r[-1].rstrip(" |")) for r in rows}


QUOTE = re.compile(r"`([a-z0-9_]+)` (agrees|contradicts|inconclusive)(?: \(([+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\])\))?")


@pytest.mark.parametrize("doc", ["README.md", "docs/results.md"])
def test_prose_quotes_the_committed_verdicts(doc):
    """Every "`claim_id` verdict (difference [interval])" in the prose is the committed table's, so nothing
    within noise is called an agreement; docs/results.md quotes every decided claim."""
    table = committed_claims()
    quotes = QUOTE.findall((REPO / doc).read_text())
    assert quotes, f"{doc} quotes no verdict"
    for claim_id, word, diff in quotes:
        assert claim_id in table, f"{doc}: unknown claim {claim_id}"
        assert word == table[claim_id][1], f"{doc}: {claim_id} is '{table[claim_id][1]}' in claims.md, not '{word}'"
        assert not diff or diff == table[claim_id][0], f"{doc}: {claim_id} {diff} vs claims.md {table[claim_id][0]}"
    if doc == "docs/results.md":
        decided = {c for c, (_, v) in table.items() if v in ("agrees", "contradicts")}
        assert decided <= {c for c, _, _ in quotes}, f"{doc} leaves out decided claims {decided - {c for c, _, _ in quotes}}"
