"""Model families: what differs between Qwen2-VL, Qwen2.5-VL and Qwen3-VL for a tiny build of ours.

Each family is its transformers classes (config, model, processor, image and video processors), the
image processor settings of its published checkpoints, and its published chat template. The tiny
builder (models/tiny.py) trains one tokenizer for all of them and takes the rest from here; the
real-shape check (tools/real_shape.py) uses the same processors at the published sizes
(models/published.py).

What each family changes, as the tiny models mirror it:
* Qwen2.5-VL (arXiv 2502.13923, Sec. 2.1): the vision tower uses window attention (112 px windows) with
  full attention in a few blocks (`fullatt_block_indexes`, the last of 4 blocks of 8 in the real ones),
  RMSNorm and a SwiGLU MLP; the language model is Qwen2.5; M-RoPE as Qwen2-VL. Chat template: Qwen2-VL's.
* Qwen3-VL (Qwen3-VL model card; transformers' qwen3_vl): 16 px patches, a learned position embedding
  interpolated to the image grid, DeepStack (features of intermediate vision blocks added to the first
  language-model layers, `deepstack_visual_indexes`), interleaved M-RoPE, explicit head_dim; its chat
  template adds tool calls and no default system prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, field

QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]


def check_head_dim(hidden: int, heads: int) -> int:
    head_dim = hidden // heads
    if head_dim < 32 or head_dim % 8:
        raise ValueError(f"model.tiny.hidden/heads = {head_dim}: need a head_dim >= 32 (vLLM CPU) and divisible by 8")
    return head_dim

# Qwen/Qwen3-VL-*-Instruct `chat_template` (the same text in the 2B, 4B and 8B Instruct repos; a copy of
# Qwen3-VL-8B-Instruct's, 5292 bytes, sha256 3636d0f0bd6bef02...: QWEN3_VL_TEMPLATE_SHA256, checked in
# tests/test_model_families.py).
QWEN3_VL_CHAT_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' }}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and message.content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
QWEN3_VL_TEMPLATE_SHA256 = "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"
# Image normalisation of the published preprocessor_config.json files: Qwen2-VL and Qwen2.5-VL use
# OpenAI CLIP's mean / std (Qwen2VLImageProcessor's defaults), Qwen3-VL 0.5 / 0.5.
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class Family:
    config: str                 # transformers config class
    model: str                  # transformers model class (AutoModelForImageTextToText maps config -> it)
    processor: str
    video_processor: str
    patch_size: int             # vision patch (px); an image token covers (patch_size * merge 2)^2 px
    image_mean: list = field(default_factory=lambda: CLIP_MEAN)
    image_std: list = field(default_factory=lambda: CLIP_STD)
    chat_template: str = ""
    layer_classes: tuple = ()   # decoder layer and vision block (FSDP wrap units, conf/model/*.yaml layer_classes)


def _qwen2_vl_template() -> str:
    return QWEN2_VL_CHAT_TEMPLATE


FAMILIES = {
    "qwen2_vl": Family("Qwen2VLConfig", "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor",
                       "Qwen2VLVideoProcessor", 14, chat_template="qwen2_vl",
                       layer_classes=("transformers.models.qwen2_vl.modeling_qwen2_vl.Qwen2VLDecoderLayer",
                                      "transformers.models.qwen2_vl.modeling_qwen2_vl.Qwen2VLVisionBlock")),
    # Qwen/Qwen2.5-VL-*-Instruct ship Qwen2-VL's chat template unchanged (chat_template.json) and Qwen2-VL's
    # image processor settings (patch 14, CLIP normalisation).
    "qwen2_5_vl": Family("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor",
                         "Qwen2VLVideoProcessor", 14, chat_template="qwen2_vl",
                         layer_classes=("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl.Qwen2_5_VLDecoderLayer",
                                        "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl.Qwen2_5_VLVisionBlock")),
    # Qwen/Qwen3-VL-*-Instruct preprocessor_config.json: patch_size 16, merge_size 2, mean = std = 0.5.
    "qwen3_vl": Family("Qwen3VLConfig", "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor",
                       "Qwen3VLVideoProcessor", 16, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], chat_template="qwen3_vl",
                       layer_classes=("transformers.models.qwen3_vl.modeling_qwen3_vl.Qwen3VLTextDecoderLayer",
                                      "transformers.models.qwen3_vl.modeling_qwen3_vl.Qwen3VLVisionBlock")),
}


def check_family(family: str) -> Family:
    if family not in FAMILIES:
        raise ValueError(f"model.build.arch.family={family!r}: choose one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def chat_template(family: str) -> str:
    name = check_family(family).chat_template
    return _qwen2_vl_template() if name == "qwen2_vl" else QWEN3_VL_CHAT_TEMPLATE


def model_class(family: str):
    import transformers

    return getattr(transformers, check_family(family).model)


def family_of(config) -> str:
    """The family of a transformers config (its model_type), e.g. a loaded checkpoint's."""
    kind = getattr(config, "model_type", None)
    if kind not in FAMILIES:
        raise ValueError(f"model_type={kind!r} is not a family of ours ({', '.join(FAMILIES)})")
    return kind


def family_processor(family: str, tokenizer, min_pixels: int, max_pixels: int):
    """The family's processor around `tokenizer`, with its published image settings and chat template;
    `min_pixels` / `max_pixels` bound every image (the processor resizes into them)."""
    import transformers

    spec = check_family(family)
    image = transformers.Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=spec.patch_size,
                                               image_mean=spec.image_mean, image_std=spec.image_std)
    video = getattr(transformers, spec.video_processor)(
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels}, patch_size=spec.patch_size,
        image_mean=spec.image_mean, image_std=spec.image_std)
    return getattr(transformers, spec.processor)(image_processor=image, tokenizer=tokenizer, video_processor=video,
                                                 chat_template=chat_template(family))


def mrope_section(head_dim: int) -> list[int]:
    """M-RoPE split of head_dim / 2 rotary frequencies into (temporal, height, width), in the real models'
    proportions: Qwen2-VL / Qwen2.5-VL [16, 24, 24] of 64, here the tiny Qwen2-VL's rule (a quarter temporal)."""
    half, quarter = head_dim // 2, head_dim // 8
    return [quarter, (half - quarter) // 2, half - quarter - (half - quarter) // 2]


def tiny_family_config(family: str, tokenizer, hidden: int, layers: int, heads: int, vision_depth: int,
                       vision_dim: int):
    """A tiny Qwen2.5-VL or Qwen3-VL config with the sizes of the tiny Qwen2-VL (models/tiny.py) and the
    family's own architecture. Vision MLP width 4 x vision_dim as the tiny Qwen2-VL's (mlp_ratio 4)."""
    import transformers

    spec = check_family(family)
    head_dim = check_head_dim(hidden, heads)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096,
                tie_word_embeddings=True, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    vision = dict(depth=vision_depth, hidden_size=vision_dim, intermediate_size=4 * vision_dim,
                  num_heads=max(1, vision_dim // 16), out_hidden_size=hidden, patch_size=spec.patch_size,
                  spatial_merge_size=2, temporal_patch_size=2)
    if family == "qwen2_5_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section(head_dim)}
        # window 112 px as published; the last block attends fully, as block 31 of the real 32 does
        vision.update(window_size=112, fullatt_block_indexes=[vision_depth - 1])
    else:
        # Qwen3-VL: interleaved M-RoPE in the published proportions ([24, 20, 20] of 64 -> [6, 5, 5] of 16)
        half = head_dim // 2
        section = [half - 2 * (half * 20 // 64), half * 20 // 64, half * 20 // 64]
        text.update(head_dim=head_dim, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                         "mrope_section": section, "mrope_interleaved": True})
        # DeepStack from every block but the last (the real ones: 3 of 24 or 27, into the first 3 layers);
        # the position-embedding table is the published 48 x 48 (interpolated to the image's grid)
        vision.update(deepstack_visual_indexes=list(range(max(1, min(vision_depth - 1, layers)))),
                      num_position_embeddings=2304)
    return getattr(transformers, spec.config)(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True)
