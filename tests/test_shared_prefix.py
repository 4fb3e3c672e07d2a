"""Prompts run once per group (rollout/shared_prefix.py) give the plain forward's numbers: log-probs and
(bitwise reproducible) gradients on batches with several prompts, groups, micro-batch slices across
groups and two images a prompt; greedy decoding from the shared prefill equals HF `generate`;
sampling is a function of the seed and draws the given distribution, row-seeded sampling equals HF `generate`'s
and ignores the batch; a LoRA policy and its adapter-disabled reference share the prefix too; gradient
checkpointing and sharded weights fall back."""
import pytest
import torch

from conftest import TINY_FAST, compose_cfg
from conftest import check
from vlmrl.data.prompts import encode_prompts
from vlmrl.models.loading import load_model
from vlmrl.rollout.base import completion_logprobs, completion_logprobs_plain
from vlmrl.rollout.hf import HFRollout, completion_mask_from_ids, vision_token_ids
from vlmrl.rollout.shared_prefix import draw, sample_groups
from vlmrl.starts.start import start_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def model_and_records():
    cfg = compose_cfg(TINY_FAST)
    processor, policy = load_model(start_checkpoint(cfg))
    records = check(cfg)["datamodule"].split("train")[:5]
    return processor, policy, records


def _batch(processor, policy, records, G=4, tokens=12, seed=0):
    return HFRollout(temperature=1.0).generate(policy, processor, records, G, tokens, seed=seed)


def _close_on_completions(a, b, mask, atol=1e-5):
    torch.testing.assert_close(a * mask, b * mask, atol=atol, rtol=0)


def test_logprobs_and_gradients_equal_the_plain_forward(model_and_records):
    processor, policy, records = model_and_records
    batch = _batch(processor, policy, records[:3])                      # 3 prompts x G=4, one image each
    assert batch.pixel_values.shape[0] == 3 * batch.image_grid_thw[0].prod()  # images stored once per prompt
    assert len({int(n) for n in batch.completion_mask.sum(1)}) > 1      # ragged completions
    grads = []
    for fn in (completion_logprobs, completion_logprobs_plain, completion_logprobs):
        policy.zero_grad(set_to_none=True)
        logp = fn(policy, batch, temperature=0.7)
        (logp * batch.completion_mask).sum().backward()
        grads.append({n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None})
        if fn is completion_logprobs:
            shared = logp.detach()
        else:
            _close_on_completions(shared, logp.detach(), batch.completion_mask)
    policy.zero_grad(set_to_none=True)
    assert grads[0].keys() == grads[1].keys() and any(k.startswith("model.visual") for k in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)
        # bitwise reproducible (resumed runs must equal uninterrupted ones): no order-dependent accumulation
        assert torch.equal(grads[0][name], grads[2][name]), name


@pytest.mark.parametrize("rows", [slice(0, 4), slice(3, 9), slice(5, 6), slice(7, 12)])
def test_micro_batches_across_groups(model_and_records, rows):
    processor, policy, records = model_and_records
    batch = _batch(processor, policy, records[:3])
    micro = batch.rows(rows)
    with torch.no_grad():
        whole = completion_logprobs_plain(policy, batch)[rows]
        part = completion_logprobs(policy, micro)
    _close_on_completions(part, whole, micro.completion_mask)


def test_two_images_per_prompt(model_and_records):
    processor, policy, records = model_and_records
    two = [{**r, "images": [r["images"][0], records[(i + 1) % len(records)]["images"][0]]}
           for i, r in enumerate(records[:3])]
    batch = _batch(processor, policy, two, G=3)
    assert batch.image_grid_thw.shape[0] == 6
    with torch.no_grad():
        for rows in (slice(0, 9), slice(2, 7)):
            micro = batch.rows(rows)
            _close_on_completions(completion_logprobs(policy, micro), completion_logprobs_plain(policy, micro),
                                  micro.completion_mask)


def test_greedy_decoding_from_the_shared_prefill_equals_hf_generate(model_and_records):
    processor, policy, records = model_and_records
    prompts = encode_prompts(processor, records)
    tok = processor.tokenizer
    kw = dict(suppress_ids=vision_token_ids(tok), eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id)
    policy.eval()
    ours = sample_groups(policy, prompts, 1, 20, generator=None, greedy=True, **kw)
    hf = policy.generate(**prompts, max_new_tokens=20, do_sample=False, suppress_tokens=kw["suppress_ids"],
                         eos_token_id=kw["eos_ids"], pad_token_id=tok.pad_token_id)[:, prompts["input_ids"].shape[1]:]
    policy.train()
    assert torch.equal(ours, hf)


def test_sampling_is_a_function_of_the_seed(model_and_records):
    processor, policy, records = model_and_records
    a, b, c = (_batch(processor, policy, records[:2], seed=s) for s in (1, 1, 2))
    assert a.completions == b.completions and torch.equal(a.input_ids, b.input_ids)
    assert a.completions != c.completions
    assert a.completions[:4] != a.completions[4:]          # groups differ; rows within a group too
    assert len(set(a.completions[:4])) > 1


def test_draw_samples_the_given_distribution():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2], [0.0, 0.0, 0.0, 2.0]])   # rows need not be normalised
    gen = torch.Generator().manual_seed(0)
    tokens = torch.stack([draw(probs, gen) for _ in range(20000)])            # [20000, 2]
    freq = torch.bincount(tokens[:, 0], minlength=4).float() / len(tokens)
    torch.testing.assert_close(freq, probs[0], atol=0.015, rtol=0)            # ~4 sigma at n = 20000
    assert (tokens[:, 1] == 3).all()                                          # probability 0 is never drawn


def test_gradient_checkpointing_takes_the_plain_path(model_and_records):
    from vlmrl.rollout.shared_prefix import supports_shared_prefix

    processor, policy, records = model_and_records
    batch = _batch(processor, policy, records[:2], G=2)
    assert supports_shared_prefix(policy)
    policy.gradient_checkpointing_enable()
    try:
        assert not supports_shared_prefix(policy)          # HF would drop the prompt's KV cache
        assert supports_shared_prefix(policy.eval())       # sampling and no-grad passes keep sharing it
        policy.train()
        logp = completion_logprobs(policy, batch)
        logp.sum().backward()
    finally:
        policy.gradient_checkpointing_disable()
        policy.zero_grad(set_to_none=True)
        policy.train()
    with torch.no_grad():
        _close_on_completions(logp.detach(), completion_logprobs_plain(policy, batch), batch.completion_mask)


def test_row_seeded_sampling_from_the_shared_prefill_equals_hf_generate_and_ignores_the_batch(model_and_records):
    """seeding=row (DDP: a rank samples what one process would): the shared-prefix sampler draws each row with its
    own Gumbel noise, as HF generate does with RowSeededSampling, and a prompt samples the same in any batch."""
    from transformers import LogitsProcessorList

    from vlmrl.rollout.seeded import RowSeededSampling, row_seeds

    processor, policy, records = model_and_records
    tok, G = processor.tokenizer, 3
    rollout = HFRollout(temperature=0.7, top_k=20, top_p=0.9, seeding="row")
    both, alone = (rollout.generate(policy, processor, r, G, 16, seed=5) for r in (records[:2], records[1:2]))
    assert both.completions[G:] == alone.completions                      # prompt 1 alone: its samples unchanged
    assert len(set(both.completions[:G])) > 1 and torch.equal(both.prompt_index, torch.arange(2).repeat_interleave(G))
    repeated = encode_prompts(processor, [r for r in records[:2] for _ in range(G)])
    sampler = RowSeededSampling(row_seeds(5, records[:2], G), 0.7, top_k=20, top_p=0.9)
    policy.eval()
    hf = policy.generate(**repeated, max_new_tokens=16, do_sample=False, suppress_tokens=vision_token_ids(tok),
                         eos_token_id=[tok.eos_token_id], pad_token_id=tok.pad_token_id,
                         logits_processor=LogitsProcessorList([sampler]))[:, repeated["input_ids"].shape[1]:]
    policy.train()
    hf = torch.where(completion_mask_from_ids(hf, [tok.eos_token_id]).bool(), hf, tok.pad_token_id)
    assert both.completions == tok.batch_decode(hf, skip_special_tokens=True)


def test_lora_policy_and_its_reference_share_the_prefix(model_and_records):
    """LoRA: the policy (adapter on) and the reference (adapter disabled, the same module) take the shared-prefix
    path and give the plain forward's log-probs, each with its adapter state throughout."""
    import copy

    pytest.importorskip("peft")  # not in the vLLM venv
    from vlmrl.models.loading import AdapterDisabled, add_lora
    from vlmrl.rollout.shared_prefix import supports_shared_prefix

    processor, policy, records = model_and_records
    lora = add_lora(copy.deepcopy(policy), r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)                                    # the adapter moves the log-probs
    batch = _batch(processor, policy, records[:2], G=3)
    ref = AdapterDisabled(lora)
    assert supports_shared_prefix(lora) and supports_shared_prefix(ref)
    with torch.no_grad():
        adapted, base = completion_logprobs(lora, batch), completion_logprobs(ref, batch)
        _close_on_completions(adapted, completion_logprobs_plain(lora, batch), batch.completion_mask)
        _close_on_completions(base, completion_logprobs_plain(policy, batch), batch.completion_mask)
    assert (adapted - base).abs().mul(batch.completion_mask).max() > 1e-3


def test_sharded_weights_take_the_plain_path(model_and_records):
    """FSDP / ZeRO-3 gather weights collectively in every forward call: every rank must make the same calls, which
    the data-dependent shared prefix (length buckets, decoding steps) would not."""
    from vlmrl.rollout.shared_prefix import supports_shared_prefix

    _, policy, _ = model_and_records
    param = next(policy.parameters())
    param.ds_id = 0                                                  # how DeepSpeed ZeRO-3 marks its parameters
    try:
        assert not supports_shared_prefix(policy)
    finally:
        del param.ds_id
    assert supports_shared_prefix(policy)


def test_groups_and_concat_keep_each_rows_logprobs(model_and_records):
    """Dynamic sampling's batch surgery: groups picked from two rollouts of different prompt and completion
    lengths, concatenated (re-padded), give each row the log-probs it had in its own batch, both ways."""
    from vlmrl.rollout.base import concat

    processor, policy, records = model_and_records
    a = _batch(processor, policy, records[:3], tokens=12, seed=1)
    b = _batch(processor, policy, records[3:5], tokens=8, seed=2)
    joined = concat([a.groups([2, 0]), b.groups([1])], pad_id=processor.tokenizer.pad_token_id)
    assert joined.prompt_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert joined.completions == a.completions[8:12] + a.completions[0:4] + b.completions[4:8]
    G, L = 4, joined.completion_mask.shape[1]
    with torch.no_grad():
        expected = torch.cat([torch.nn.functional.pad(x, (0, L - x.shape[1])) for x in (
            completion_logprobs(policy, a)[8:12], completion_logprobs(policy, a)[0:4],
            completion_logprobs(policy, b)[4:8])])
        for fn in (completion_logprobs, completion_logprobs_plain):
            _close_on_completions(fn(policy, joined), expected, joined.completion_mask)
