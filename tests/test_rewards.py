"""Rewards: accuracy, format, total and HFRRF; hostile strings score 0 and never raise."""
import pytest
import torch

from vlmrl.rewards import Reward, format_reward, integer_accuracy, math_accuracy

GOOD = "<think>I count 3 shapes.</think><answer>3</answer>"


@pytest.mark.parametrize("text,expected", [
    (GOOD, 1.0),
    ("<think>x</think>\n<answer> 3 </answer>\n", 1.0),
    ("<think></think><answer>3</answer>", 1.0),
    ("<answer>3</answer>", 0.0),                                   # no think
    ("<think>x</think><answer></answer>", 0.0),                    # empty answer
    ("<think>x</think><answer>  </answer>", 0.0),
    ("<think>x</think><answer>3</answer> trailing", 0.0),
    ("<think>a<think>b</think><answer>3</answer>", 0.0),           # nested
    ("<think>x</think><answer>3</answer><answer>4</answer>", 0.0),
    ("", 0.0), ("\x00\ufffd<<<>>>", 0.0),
])
def test_format(text, expected):
    assert format_reward(text) == expected


@pytest.mark.parametrize("text,answer,expected", [
    (GOOD, "3", 1.0), (GOOD, "4", 0.0),
    ("<answer> 12 </answer>", "12", 1.0),
    ("<answer>3.0</answer>", "3", 0.0),                             # R1-V regex: digits only
    ("<answer>three</answer>", "3", 0.0),
    ("no tags 3", "3", 0.0), ("", "3", 0.0),
    ("<answer>3</answer>", "not a number", 0.0),
    ("<answer>" + "9" * 5000 + "</answer>", "3", 0.0),
])
def test_integer_accuracy(text, answer, expected):
    assert integer_accuracy(text, answer) == expected


@pytest.mark.parametrize("text,answer,expected", [
    ("<think>t</think><answer>70</answer>", "70°", 1.0),
    ("<answer>70°</answer>", "70°", 1.0),
    ("<answer> Final Answer:70 </answer>", "70°", 1.0),           # Vision-R1 output format
    ("<answer>\\frac{140}{2}</answer>", "70°", 1.0),
    ("<answer>71</answer>", "70°", 0.0),
    ("<answer></answer>", "70°", 0.0),
    ("70", "70°", 0.0),                                             # no tags
    ("<answer>\\frac{{{{</answer>", "70°", 0.0),
    ("<answer>" + "(" * 2000 + "</answer>", "70°", 0.0),
])
def test_math_accuracy(text, answer, expected):
    assert math_accuracy(text, answer) == expected


def test_total_is_acc_plus_weighted_format():
    completions = [GOOD, "<answer>3</answer>", "<think>x</think><answer>4</answer>", "garbage"]
    out = Reward(format_w=0.5, hard=False)(completions, ["3"] * 4, ["integer"] * 4)
    torch.testing.assert_close(out["accuracy"], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(out["format"], torch.tensor([1.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(out["total"], torch.tensor([1.5, 1.0, 0.5, 0.0]))


def test_hfrrf_needs_format_and_answer():
    completions = [GOOD, "<answer>3</answer>", "<think>x</think><answer>4</answer>"]
    out = Reward(hard=True, format_w=1.0)(completions, ["3"] * 3, ["integer"] * 3)
    torch.testing.assert_close(out["total"], torch.tensor([1.0, 0.0, 0.0]))


def test_each_record_is_checked_by_its_own_verifier():
    """One batch may mix tasks: "<answer>70</answer>" is right for gold 70° only under math-verify."""
    records = [{"answer": "70°", "verifier": "math"}, {"answer": "70°", "verifier": "integer"},
               {"answer": "3", "verifier": "integer"}]
    out = Reward(format_w=0.0, hard=False).score_records(["<answer>70</answer>"] * 2 + [GOOD], records)
    torch.testing.assert_close(out["accuracy"], torch.tensor([1.0, 0.0, 1.0]))
    repeated = Reward(format_w=1.0, hard=False).score_records(["<answer>70</answer>"] * 2, records[:1], repeat=2)
    torch.testing.assert_close(repeated["accuracy"], torch.tensor([1.0, 1.0]))


def test_bad_reward_config_and_input():
    with pytest.raises(ValueError, match="format_w"):
        Reward(format_w=-1, hard=False)
    with pytest.raises(ValueError, match="verifier"):
        Reward(format_w=1.0, hard=False)([GOOD], ["3"], ["regex"])
    with pytest.raises(ValueError, match="2 completions for 1 answers"):
        Reward(format_w=1.0, hard=False)([GOOD, GOOD], ["3"], ["integer"])
