"""Chat formatting shared by rollouts, evaluation and SFT: one user turn with the image(s) then
the problem text, Qwen2-VL's chat template, generation prompt appended (R1-V style, no system
prompt of our own; the template adds Qwen's default one)."""
from __future__ import annotations


def user_message(record: dict) -> list[dict]:
    content = [{"type": "image"} for _ in record["images"]] + [{"type": "text", "text": record["problem"]}]
    return [{"role": "user", "content": content}]


def prompt_text(processor, record: dict) -> str:
    return processor.apply_chat_template(user_message(record), add_generation_prompt=True, tokenize=False)


def encode_prompts(processor, records: list[dict], completions: list[str] | None = None):
    """Tokenise prompts (left-padded) with their images; with `completions`, append each completion and
    the end-of-turn token (for SFT). Returns the processor's BatchFeature."""
    texts = [prompt_text(processor, r) for r in records]
    if completions is not None:
        eos = processor.tokenizer.eos_token
        texts = [t + c + eos for t, c in zip(texts, completions)]
    images = [list(r["images"]) for r in records]
    return processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")
