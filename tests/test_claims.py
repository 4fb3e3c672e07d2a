"""The claims table (report/claims.py) and its outcomes file (report/outcomes.py), and the summary of any
multirun dir (report/sweep.py), on synthetic run dirs written as the trainer and evaluate.py write them.
The statistics themselves are tests/test_inference.py's.

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
from vlmrl.report.claims import CLAIMS, Arm, Claim, build_claims, decide_all, load_claims, run_metrics, selector_keys
from vlmrl.report.cli import main
from vlmrl.report.outcomes import Record, read, records
from vlmrl.report.runs import load_run
from vlmrl.report.inference import knob_spread

REPO = Path(__file__).resolve().parents[1]
PAPERS = REPO / "docs" / "papers.md"


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


def claim(a_method="grpo_d", b_method="grpo", expect=">", min_effect=2.0) -> Claim:
    return Claim("c", "othink_mr1", "Table 1", "a beats b", "acc", Arm({"result": "table1", "method": a_method,
                 "data": "counting"}, "counting"), Arm({"result": "table1", "method": b_method, "data": "counting"},
                 "counting"), expect, min_effect, "a test's minimum effect")


def decide(runs, *claims):
    """The decisions of `claims` (one family) over the run dirs, through their records, as the report makes them."""
    recs = records(runs, [runs[0].path.parent], selector_keys(claims), run_metrics(claims))
    out = decide_all(recs, claims)
    return out[0] if len(out) == 1 else out


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
    assert agrees.verdict == agrees.adjusted == "agrees" and agrees.paired_items
    assert agrees.diff == pytest.approx(40.0) and 20 < agrees.lo < 40 < agrees.hi < 60
    assert agrees.a.shape == (3, 60) and agrees.power == ""         # decided rows state no power
    assert decide(arms, claim(expect="<")).verdict == "contradicts"
    # a minimum effect larger than the gap: significant, but too small to matter
    assert decide(arms, claim(min_effect=50.0)).verdict == "too small to matter"


def test_equal_arms_are_inconclusive(arms):
    # grpo and sft: both 50% right, on different items
    d = decide(arms, claim("sft", "grpo"))
    assert d.diff == pytest.approx(0.0) and d.lo < 0 < d.hi and d.verdict == "inconclusive"
    assert d.power.startswith("MDE ") and "to detect 2" in d.power           # what the test could have found


def test_one_seed_is_not_decided_and_no_runs_is_not_run(arms):
    one = Claim("c", "othink_mr1", "T1", "a beats base", "acc", Arm({"result": "table1", "method": "grpo_d"}, "counting"),
                Arm({"result": "table1", "method": "base"}, "counting"), ">", 2.0, "why")
    d = decide(arms, one)
    # a trained arm of one seed: its seed noise is unknown, so no interval, and no verdict
    assert d.verdict.startswith("too few seeds") and np.isnan(d.lo) and d.p is None
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
                Arm({"result": "table1", "method": "untrained"}, "counting"), ">", 2.0, "why")
    d = decide([*arms, load_run(base)], one)
    assert d.verdict == "agrees" and d.paired_items and d.b.shape == (1, 60)
    assert d.est.fixed_b and float(d.est.var_b) == 0.0                       # no seed noise in a fixed start


def test_claims_table_has_a_verdict_per_claim(arms):
    recs = records(arms, [arms[0].path.parent], [], [])
    artifact = build_claims(recs, [claim(), claim("sft", "grpo"), claim("grpo_d", "nonexistent")])
    rows = [line.split(" | ") for line in artifact.markdown.splitlines() if line.startswith("| c ")]
    assert [(r[11], r[12]) for r in rows] == [("agrees", "agrees"), ("inconclusive", "inconclusive"), ("not run", "not run")]
    assert rows[0][8].startswith("+40.0 [") and rows[0][6] == "90.0 ± 0.0 (n=3)" and rows[0][3] == "2"
    assert rows[1][13].startswith("MDE ") and rows[2][13] == "–"


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
    # a: mean 50, seeds 48 / 50 / 52 (var 4); b: mean 54, 53 / 54 / 55 (var 1): spread 4.0, SE sqrt(4/3 + 1/3) = 1.291,
    # Welch df (5/3)^2 / ((4/3)^2 / 2 + (1/3)^2 / 2) = 2.941, t(0.975) 3.219 -> 4.0 -+ 4.155 = [-0.2, +8.2]: within
    # (the 2 x SE criterion it replaces said "more than": 4.0 > 2.3)
    text = knob_spread({"a": [48, 50, 52], "b": [53, 54, 55]})
    assert text == "spread 4.0 points (a 50.0 to b 54.0), 95% interval [-0.2, +8.2] (Welch over seeds): within seed noise"
    # b at 60-62: spread 11.0, the same SE: 11.0 -+ 4.155 = [+6.8, +15.2]
    assert knob_spread({"a": [48, 50, 52], "b": [60, 61, 62]}).endswith("[+6.8, +15.2] (Welch over seeds): more than seed noise")
    # an untrained start (one value) has no seed noise: base 40 vs a (var 4, SE 1.155, df 2, t 4.303): 10 -+ 4.968
    assert knob_spread({"base": [40], "a": [48, 50, 52]}).startswith("spread 10.0 points (base 40.0 to a 50.0), 95% interval [+5.0, +15.0]")
    assert knob_spread({"base": [40], "b": [50]}) == "no value of the knob has two seeds: no seed noise to compare with"
    assert knob_spread({"a": [1, 2]}) == "fewer than two values of the knob ran"


def test_a_knob_of_several_values_is_a_permutation_test():
    # three values, seeds far apart: of the 9! / 3!^3 = 1680 labellings, only the 6 that keep the three groups
    # (in any order) reach the observed spread: p = 6 / 1680 = 0.0036 (here estimated from 9,999 shuffles)
    three = knob_spread({"a": [48, 50, 52], "b": [53, 54, 55], "c": [60, 61, 62]})
    assert three.startswith("spread 11.0 points (a 50.0 to c 61.0), permutation p ") and three.endswith(": more than seed noise")
    p = float(three.split("permutation p ")[1].split(" ")[0])
    assert p == pytest.approx(6 / 1680, abs=0.0015)
    # the same numbers shuffled across values: no knob, p large
    assert knob_spread({"a": [48, 55, 61], "b": [50, 53, 62], "c": [52, 54, 60]}).endswith("within seed noise")
    # calibration: under no effect (3 values x 3 seeds of one normal), p < 0.05 in about 5% of 400 knobs
    from vlmrl.report.inference import permutation_p
    rng = np.random.default_rng(3)
    rate = np.mean([permutation_p([list(rng.normal(0, 4, 3)) for _ in range(3)], permutations=199, seed=i) < 0.05
                    for i in range(400)])
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400), rate


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


# ---------------------------------------------------------------- the committed table: its data, and the prose

COMMITTED = REPO / "docs/results/tiny"


def committed_claims() -> dict[str, tuple[str, str, str]]:
    """{claim id: (ours a - b [95% CI], verdict, Holm verdict)} from the committed tiny reproduction's claims.md."""
    rows = [line.split(" | ") for line in (COMMITTED / "claims.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| id ", "|---"))]
    return {r[0].lstrip("| "): (r[8], r[11], r[12]) for r in rows}


def test_a_fresh_clone_rebuilds_the_committed_claims_table_from_its_outcomes(tmp_path, monkeypatch):
    """docs/results.md's `python -m vlmrl.report --from-outcomes docs/results/tiny/outcomes.json.gz --out
    report/claims`: claims.md follows from the committed per-item outcomes and sweeps/claims.yaml alone, byte for
    byte (no run dirs)."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "report" / "claims"
    assert main(["--from-outcomes", "docs/results/tiny/outcomes.json.gz", "--out", str(out)]) == 0
    assert (out / "claims.md").read_bytes() == (COMMITTED / "claims.md").read_bytes()


WORDS = "agrees|contradicts|inconclusive|too small to matter"
QUOTE = re.compile(rf"`([a-z0-9_]+)` ({WORDS})(?: \(([+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\])(?:; Holm: ({WORDS}))?\))?")


@pytest.mark.parametrize("doc", ["README.md", "docs/results.md"])
def test_prose_quotes_the_committed_verdicts(doc):
    """Every "`claim_id` verdict (difference [interval]; Holm: verdict)" in the prose is the committed table's, so
    nothing within noise or below its minimum effect is called an agreement; docs/results.md quotes every claim
    decided either way."""
    table = committed_claims()
    quotes = QUOTE.findall((REPO / doc).read_text())
    assert quotes, f"{doc} quotes no verdict"
    for claim_id, word, diff, holm in quotes:
        assert claim_id in table, f"{doc}: unknown claim {claim_id}"
        assert word == table[claim_id][1], f"{doc}: {claim_id} is '{table[claim_id][1]}' in claims.md, not '{word}'"
        assert not diff or diff == table[claim_id][0], f"{doc}: {claim_id} {diff} vs claims.md {table[claim_id][0]}"
        assert not holm or holm == table[claim_id][2], f"{doc}: {claim_id} Holm {holm} vs claims.md {table[claim_id][2]}"
    if doc == "docs/results.md":
        decided = {c for c, (_, v, _) in table.items() if v in ("agrees", "contradicts", "too small to matter")}
        assert decided <= {c for c, *_ in quotes}, f"{doc} leaves out decided claims {decided - {c for c, *_ in quotes}}"


# ---------------------------------------------------------------- families, margins, tuning (on records)

def rec(rid: str, method: str, seed, acc: float, trained: bool = True, tuned=None, paper="othink_mr1") -> Record:
    """A record with its per-task mean only (no items): its arm's noise is its seeds'."""
    return Record(rid, paper, "table1", method, "counting" if trained else "none", seed, trained,
                  tuned=tuned or {}, means={"counting": {"acc": acc}})


def seed_arm(method: str, d: float, s: float, **kw) -> list:
    """Three seeds at d - s, d, d + s (fractions): in points, seed sd 100 s, SE 100 s / sqrt(3), df 2."""
    return [rec(f"{method}{k}", method, k, v, **kw) for k, v in enumerate((d - s, d, d + s))]


def claim_on(cid: str, a: str, b: str, expect=">", min_effect=2.0, paper="othink_mr1", margin_vs=None) -> Claim:
    return Claim(cid, paper, "T", "a vs b", "acc", Arm({"result": "table1", "method": a}, "counting"),
                 Arm({"result": "table1", "method": b}, "counting"), expect, min_effect, "why", False, margin_vs)


def test_holm_adjusts_within_each_papers_family():
    # 5 points over a fixed 0 with SE 0.887 points (s = 1.536): t = 5.64, df 2 -> p = 0.030 each. Alone, each
    # agrees; three in one paper: Holm's adjusted p is 3 x 0.030 = 0.090 for each, so none survives.
    recs = seed_arm("x", 0.05, 0.01536) + [rec("base", "base", None, 0.0, trained=False)]
    solo = decide_all(recs, [claim_on("c1", "x", "base")])[0]
    assert solo.p == pytest.approx(0.030, abs=0.001) and solo.verdict == solo.adjusted == "agrees"
    three = decide_all(recs, [claim_on(f"c{k}", "x", "base") for k in range(3)])
    assert {(d.verdict, d.adjusted) for d in three} == {("agrees", "inconclusive")}
    assert [d.p_holm for d in three] == pytest.approx([0.090] * 3, abs=0.003)
    assert all(d.power.startswith("MDE ") for d in three)            # inconclusive after adjustment: power stated
    # the same three claims split over two papers: two families (of 2 and 1)
    vr = [Record(**{**vars(r), "id": "v" + r.id, "paper": "vision_r1"}) for r in recs]
    split = decide_all(recs + vr, [claim_on("c0", "x", "base"), claim_on("c1", "x", "base"),
                                   claim_on("c2", "x", "base", paper="vision_r1")])
    assert [d.adjusted for d in split] == ["inconclusive", "inconclusive", "agrees"]


def test_an_equivalence_margin_is_never_wider_than_the_effect_under_study():
    # y vs z: 0.2 points apart with SE 0.3 (df ~2.1, half-width ~1.3) -> inside +-2 (agrees with a margin of 2); the effect under study,
    # x vs z, is 1.0 point: the margin is capped at 1.0, and the interval (half-width ~1.2) no longer fits
    recs = seed_arm("x", 0.51, 0.001) + seed_arm("y", 0.502, 0.005) + seed_arm("z", 0.50, 0.001)
    free = decide_all(recs, [claim_on("eq", "y", "z", "~"), claim_on("gain", "x", "z")])[0]
    capped = decide_all(recs, [claim_on("eq", "y", "z", "~", margin_vs="gain"), claim_on("gain", "x", "z")])[0]
    assert free.delta == 2.0 and free.verdict == "agrees"
    assert capped.delta == pytest.approx(1.0) and capped.verdict == "inconclusive"
    assert "capped by gain" in build_claims(recs, [claim_on("eq", "y", "z", "~", margin_vs="gain"),
                                                   claim_on("gain", "x", "z")]).markdown


def test_a_relative_minimum_effect_is_a_share_of_b():
    recs = seed_arm("x", 0.40, 0.001) + seed_arm("y", 0.50, 0.001)
    c = Claim("len", "othink_mr1", "T", "x shorter", "acc", Arm({"result": "table1", "method": "x"}, "counting"),
              Arm({"result": "table1", "method": "y"}, "counting"), "<", 0.25, "a quarter", relative=True)
    d = decide_all(recs, [c])[0]
    assert d.delta == pytest.approx(12.5)                               # 25% of b's 50 points
    assert d.verdict == "too small to matter"                           # 10 points below b, significant, < 12.5


def test_claims_tuned_on_their_own_seeds_are_marked():
    recs = (seed_arm("x", 0.6, 0.01, tuned={"fig6_lr": [0]}) + seed_arm("y", 0.5, 0.01, tuned={"fig6_lr": [0]})
            + seed_arm("w", 0.5, 0.01, tuned={"other": [100, 101]}))
    marked, clean = decide_all(recs, [claim_on("m", "x", "y"), claim_on("n", "w", "w")])
    assert marked.tuned == "fig6_lr (seed 0)" and clean.tuned == ""


def test_a_claim_without_a_minimum_effect_is_refused(tmp_path):
    text = CLAIMS.read_text()
    bad = tmp_path / "claims.yaml"
    bad.write_text(text.replace("    min_effect: 20\n", "", 1))
    with pytest.raises(ValueError, match="fig5_format_before_acc: missing \\['min_effect'\\]"):
        load_claims(bad)
    bad.write_text(text.replace("    min_effect: 20\n", "    min_effect: lots\n", 1))
    with pytest.raises(ValueError, match="min_effect='lots'"):
        load_claims(bad)


def test_every_committed_claim_names_its_minimum_effect_and_equivalence_its_effect_under_study():
    claims = load_claims(CLAIMS)
    assert all(c.min_effect > 0 and len(c.why) > 20 for c in claims)
    assert all(c.margin_vs for c in claims if c.expect == "~")


# ---------------------------------------------------------------- the outcomes file

def test_the_outcomes_file_rebuilds_the_claims_table_byte_for_byte(arms, tmp_path, capsys):
    out = tmp_path / "report"
    cs = [claim(), claim("sft", "grpo"), claim("grpo_d", "sft", "~")]
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text(yaml.safe_dump({"claims": [
        {"id": f"c{k}", "paper": c.paper, "source": c.source, "claim": c.claim, "metric": c.metric,
         "a": {"select": c.a.select, "task": c.a.task}, "b": {"select": c.b.select, "task": c.b.task},
         "expect": c.expect, "min_effect": c.min_effect, "why": c.why} for k, c in enumerate(cs)]}))
    written = report([arms[0].path.parent], out, claims=claims_file)
    assert out / "outcomes.json.gz" in written and (out / "claims.md").is_file()
    recs = read(out / "outcomes.json.gz")
    assert len(recs) == 10 and recs == sorted(recs, key=lambda r: r.id)
    assert len(recs[0].items["id"]) == 60 and set(recs[0].items) == {"task", "id", "acc", "format", "completion_len"}
    rebuilt = tmp_path / "rebuilt"
    assert main(["--from-outcomes", str(out / "outcomes.json.gz"), "--out", str(rebuilt), "--claims", str(claims_file)]) == 0
    assert (rebuilt / "claims.md").read_bytes() == (out / "claims.md").read_bytes()
    # the same runs written again give the same bytes (gzip mtime 0, sorted records)
    again = tmp_path / "again"
    report([arms[0].path.parent], again, claims=claims_file)
    assert (again / "outcomes.json.gz").read_bytes() == (out / "outcomes.json.gz").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--from-outcomes", str(tmp_path / "nope.json.gz"), "--out", str(rebuilt)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"python -m vlmrl.report: outcomes file {tmp_path / 'nope.json.gz'} not found "
                   "(VLMRL_TRACEBACK=1 prints the traceback)"]


def test_a_sweep_at_the_ceiling_says_so_and_compares_learning_speed(tmp_path):
    # two cells x two seeds, every run ends 100% right; val/acc logged at steps 0, 10, 20 (format always 1):
    #   format_w=0: [.5, .9, 1] -> (0.7 x 10 + 0.95 x 10) / 20 = 82.5%; [.5, .8, 1] -> 77.5%: mean 80.0, sd 3.536,
    #     SE 2.5, t(0.975, 1) 12.706 -> [48.2, 111.8]
    #   format_w=1: [.5, .5, 1] -> 62.5%; [.5, .6, 1] -> 67.5%: mean 65.0 [33.2, 96.8]; minus the first row -15.0, Welch SE
    #     sqrt(6.25 + 6.25) = 3.536, df 2, t 4.303 -> [-30.2, +0.2]
    sweep = tmp_path / "multirun" / "ceil"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra:\n  overrides:\n    task:\n    - reward.format_w=0,1\n    - seed=0,1\n")
    curves = {("0", 0): [.5, .9, 1.], ("0", 1): [.5, .8, 1.], ("1", 0): [.5, .5, 1.], ("1", 1): [.5, .6, 1.]}
    for n, ((w, seed), val) in enumerate(curves.items()):
        run = write_trained(sweep, f"{n}_cell", "x", seed, outcomes(1.0, seed, 100),
                            overrides=[f"reward.format_w={w}", f"seed={seed}"])
        cfg = OmegaConf.load(run / "config_resolved.yaml")
        cfg.study = None
        OmegaConf.save(cfg, run / "config_resolved.yaml")
        (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "val/acc": v, "val/format": 1.0,
                                                               "train/acc": v}) + "\n" for s, v in zip((0, 10, 20), val)))
    report([sweep])
    table = (sweep / "report" / "sweep_ceil.md").read_text()
    assert "| val acc AUC (%) [95% CI] | vs first row (points) [95% CI] | val format AUC (%) [95% CI] |" in table
    rows = [line for line in table.splitlines() if line.startswith("| 0 |") or line.startswith("| 1 |")]
    assert "| 80.0 [48.2, 111.8] | (first row) | 100.0 [100.0, 100.0] | (first row) |" in rows[0], rows[0]
    assert "| 65.0 [33.2, 96.8] | -15.0 [-30.2, +0.2] | 100.0 [100.0, 100.0] | +0.0 [+0.0, +0.0] |" in rows[1], rows[1]
    assert "**Every cell ends at the ceiling**" in table and "compare the AUC columns" in table


def test_accuracy_axes_stay_within_0_and_100_and_a_flat_result_shows_its_noise_scale():
    from vlmrl.report.plots import new_figure, percent_axis

    fig, (ax,) = new_figure()
    ax.plot([0, 1], [100.0, 100.0])                    # autoscaled, a flat line at 100 spans 96-104
    percent_axis(ax)
    assert ax.get_ylim()[1] == 100.0 and ax.get_ylim()[0] < 100.0
    percent_axis(ax, 100.0, 100.0, noise=5.8)          # 300 items: 2 SE of a 50% rate
    assert ax.get_ylim() == (94.2, 100.0)
    percent_axis(ax, 2.0, 40.0, noise=5.8)
    assert ax.get_ylim() == (0.0, 45.8)
