"""Hostile completions (GitHub issue "Reliability", part 2): every reward function returns a float in range
within `BOUND_S` per completion, on the main thread and in a worker thread (where no signal-based timeout
can fire), and a GRPO step whose rollout returns them trains on."""
import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import TINY_FAST, compose_cfg
from hostile import RECORDS, corpus
from vlmrl.rewards import Reward, format_reward
from vlmrl.scoring import VERIFIERS, guard

# Per completion and reward function. The symbolic budget is 2 s (guard.SECONDS, mmmath.SYMBOLIC_SECONDS);
# the rest is linear-time text handling of up to 2 MB and the kill.
BOUND_S = 3.0
CORPUS = corpus()
REWARDS = {"format_w": Reward(format_w=0.5, hard=False), "hard": Reward(format_w=0.0, hard=True)}


def _timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def _sweep() -> dict[str, float]:
    """Score the whole corpus with every reward function; returns the slowest call's time per function,
    failing on any value out of range."""
    slowest: dict[str, tuple[float, str]] = {}

    def note(kind: str, name: str, seconds: float):
        if seconds > slowest.get(kind, (0.0, ""))[0]:
            slowest[kind] = (seconds, name)

    for name, completion in CORPUS.items():
        value, seconds = _timed(format_reward, completion)
        assert type(value) is float and value in (0.0, 1.0), (name, value)
        note("format_reward", name, seconds)
        for record in RECORDS:
            value, seconds = _timed(VERIFIERS[record["verifier"]], completion, record)
            assert type(value) is float and value in (0.0, 1.0), (name, record, value)
            note(record["verifier"], name, seconds)
        for kind, reward in REWARDS.items():
            for record in RECORDS[:2]:  # the training verifiers: counting and geometry
                scores, seconds = _timed(reward.score_records, [completion], [record])
                total = float(scores["total"])
                high = 1.0 if reward.hard else 1.0 + reward.format_w
                assert math.isfinite(total) and 0.0 <= total <= high, (name, record, total)
                note(f"Reward({kind})", name, seconds)
    return slowest


def _report(context: str, slowest: dict) -> None:
    worst = max(slowest.items(), key=lambda item: item[1][0])
    print(f"\n[{context}] slowest per reward function:")
    for kind, (seconds, name) in sorted(slowest.items()):
        print(f"  {kind:16s} {seconds:6.3f} s  ({name})")
    print(f"[{context}] slowest overall: {worst[0]} on {worst[1][1]!r}: {worst[1][0]:.3f} s")
    over = {k: v for k, v in slowest.items() if v[0] > BOUND_S}
    assert not over, f"over the {BOUND_S} s bound: {over}"


@pytest.fixture(autouse=True)
def warm_workers():
    """Before each test, two ready workers: start-up (imports; several seconds on a loaded machine, e.g. the
    spares started after the previous test's kills) is not part of the per-call bound."""
    guard.warm(2, wait=True)


def test_hostile_corpus_is_bounded_on_the_main_thread():
    _report("main thread", _sweep())


def test_hostile_corpus_is_bounded_in_a_worker_thread():
    with ThreadPoolExecutor(max_workers=1) as pool:
        slowest = pool.submit(_sweep).result()
    _report("worker thread", slowest)


@pytest.mark.parametrize("in_thread", [False, True], ids=["main", "thread"])
def test_a_check_that_never_ends_is_killed_on_time(in_thread):
    """The bound is the kill, not the input filter: a call that sleeps forever returns its default."""
    def call():
        return _timed(guard.bounded, time.sleep, (60,), 0.5, "timed out")

    if in_thread:
        with ThreadPoolExecutor(max_workers=1) as pool:
            value, seconds = pool.submit(call).result()
    else:
        value, seconds = call()
    assert value == "timed out" and seconds < 1.5


def test_an_input_that_slips_past_the_filter_is_still_bounded():
    """`\\binom{10^{100}}{10^{50}}` is not `explosive`, and sympy never finishes it."""
    from vlmrl.scoring.verify import math_score

    answer = "\\binom{10^{100}}{10^{50}}"
    assert not guard.explosive(answer) and not guard.cheap(answer)
    value, seconds = _timed(math_score, f"<answer>{answer}</answer>", "5")
    assert value == 0.0 and guard.SECONDS - 0.1 < seconds < BOUND_S


def test_common_answers_stay_fast_and_right():
    reward = Reward(format_w=1.0, hard=False)
    reward.score_records(["<answer>70</answer>"], [RECORDS[2]])  # first use imports math-verify
    completion = "<think>The angle is 70 degrees.</think><answer>70</answer>"
    scores, seconds = _timed(reward.score_records, [completion] * 8, [RECORDS[2]] * 8)
    assert scores["accuracy"].tolist() == [1.0] * 8 and scores["format"].tolist() == [1.0] * 8
    assert seconds / 8 < 0.05, seconds
    assert VERIFIERS["math"]("<answer>8\\sqrt{3}</answer>", RECORDS[1]) == 1.0        # through a worker
    assert VERIFIERS["mm_math"]("\\boxed{x=2, y=-1}", RECORDS[11]) == 1.0
    assert VERIFIERS["integer"]("<answer>3</answer>", RECORDS[0]) == 1.0


HOSTILE_ROLLOUT = ["megabyte of digits (in answer)", "10k nested think", "binomial of googols (think+answer)",
                   "power tower (think+answer)", "lone surrogates (think+answer)", "nul bytes (bare)",
                   "tag soup 1 MB", "factorial of a googol (in answer)"]


@pytest.mark.slow
def test_a_grpo_step_on_hostile_completions_trains_on(tmp_path, monkeypatch):
    """The rollout's tokens are the model's own samples; only the decoded text the rewards read is hostile."""
    from vlmrl.infra.runlog import read_metrics
    from vlmrl.rollout.hf import HFRollout
    from vlmrl.train import train

    generate, served = HFRollout.generate, []

    def hostile_generate(self, model, processor, records, group_size, max_new_tokens, seed, **kwargs):
        batch = generate(self, model, processor, records, group_size, max_new_tokens, seed, **kwargs)
        if group_size > 1:  # training rollouts; evaluation (greedy, G = 1) stays as it was
            batch.completions = [CORPUS[HOSTILE_ROLLOUT[i % len(HOSTILE_ROLLOUT)]] for i in range(len(batch.completions))]
            served.append(len(batch.completions))
        return batch

    monkeypatch.setattr(HFRollout, "generate", hostile_generate)
    overrides = [*TINY_FAST, "algo.steps=1", "algo.group_size=4", "kl=constant"]
    result = train(compose_cfg(overrides), tmp_path, overrides)
    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "train/loss" in r]
    assert served == [8] and len(rows) == 1
    assert all(math.isfinite(v) for v in rows[0].values() if isinstance(v, (int, float)))
    assert result["end"] is not None
