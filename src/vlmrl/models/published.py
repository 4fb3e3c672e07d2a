"""Published architectures of the real models of conf/model/ (nothing is downloaded: the numbers live here).

Each entry is the transformers config class and the config.json values of the hub repo named (the
`text_config` / `vision_config` keys that set a shape, plus the rotary and norm settings), so a model
built from it has the published parameter count and every tensor at its true shape. Token ids are left
to the tokenizer the model is built with (tools/real_shape.py: a locally trained one whose ids all lie
inside the published vocabulary); the chat template and image settings are the family's
(models/families.py). Source of every entry: the hub repo's config.json, which cannot be fetched here; its numbers
were checked against public copies of those files (Qwen2.5-VL-3B, Qwen3-VL-2B/4B/8B: copies in other projects'
code and tests; Qwen3-VL-2B as of hub revision 89644892e4d8), and each built model's parameter count against the
model card (tests/test_model_families.py).
"""
from __future__ import annotations

# Qwen2-VL's vision tower (Qwen/Qwen2-VL-2B-Instruct and -7B-Instruct config.json, vision_config); its
# `hidden_size` is the language model's width (the merger's output), set per model.
_QWEN2_VISION = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14, spatial_merge_size=2,
                     temporal_patch_size=2, in_channels=3)
# Qwen2.5-VL's vision tower (Qwen/Qwen2.5-VL-3B-Instruct and -7B-Instruct config.json, vision_config).
_QWEN2_5_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                       spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
                       hidden_act="silu", in_channels=3)
# Qwen2-VL / Qwen2.5-VL text rotary settings (config.json: rope_theta 1e6, M-RoPE sections [16, 24, 24] of 64).
_QWEN2_ROPE = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}
# Qwen3-VL: 2B and 4B share a 24-block tower, 8B has Qwen3-VL's 27-block one (config.json vision_config).
_QWEN3_VISION_SMALL = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16,
                           deepstack_visual_indexes=[5, 11, 17])
_QWEN3_VISION_8B = dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16,
                        deepstack_visual_indexes=[8, 16, 24])
_QWEN3_VISION = dict(patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                     hidden_act="gelu_pytorch_tanh", in_channels=3)
# Qwen3-VL text rotary settings (config.json: rope_theta 5e6, interleaved M-RoPE [24, 20, 20] of 64).
_QWEN3_ROPE = {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20], "mrope_interleaved": True}

ARCH = {
    # 2.21B parameters ("2B" on the model card)
    "Qwen/Qwen2-VL-2B-Instruct": ("Qwen2VLConfig", dict(
        text_config=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6,
                         max_position_embeddings=32768, rope_parameters=_QWEN2_ROPE),
        vision_config=dict(**_QWEN2_VISION, hidden_size=1536), tie_word_embeddings=True)),
    # 8.29B ("7B" on the model card)
    "Qwen/Qwen2-VL-7B-Instruct": ("Qwen2VLConfig", dict(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, rms_norm_eps=1e-6,
                         max_position_embeddings=32768, rope_parameters=_QWEN2_ROPE),
        vision_config=dict(**_QWEN2_VISION, hidden_size=3584), tie_word_embeddings=False)),
    # 3.75B ("3B")
    "Qwen/Qwen2.5-VL-3B-Instruct": ("Qwen2_5_VLConfig", dict(
        text_config=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6,
                         max_position_embeddings=128000, rope_parameters=_QWEN2_ROPE),
        vision_config=dict(**_QWEN2_5_VISION, out_hidden_size=2048), tie_word_embeddings=True)),
    # 8.29B ("7B")
    "Qwen/Qwen2.5-VL-7B-Instruct": ("Qwen2_5_VLConfig", dict(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, rms_norm_eps=1e-6,
                         max_position_embeddings=128000, rope_parameters=_QWEN2_ROPE),
        vision_config=dict(**_QWEN2_5_VISION, out_hidden_size=3584), tie_word_embeddings=False)),
    # 2.13B ("2B"); config.json as of revision 89644892e4d85e24eaac8bacfd4f463576704203
    "Qwen/Qwen3-VL-2B-Instruct": ("Qwen3VLConfig", dict(
        text_config=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                         num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True,
                         rms_norm_eps=1e-6, max_position_embeddings=262144, rope_parameters=_QWEN3_ROPE),
        vision_config=dict(**_QWEN3_VISION_SMALL, **_QWEN3_VISION, out_hidden_size=2048), tie_word_embeddings=True)),
    # 4.44B ("4B")
    "Qwen/Qwen3-VL-4B-Instruct": ("Qwen3VLConfig", dict(
        text_config=dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True,
                         rms_norm_eps=1e-6, max_position_embeddings=262144, rope_parameters=_QWEN3_ROPE),
        vision_config=dict(**_QWEN3_VISION_SMALL, **_QWEN3_VISION, out_hidden_size=2560), tie_word_embeddings=True)),
    # 8.77B ("8B")
    "Qwen/Qwen3-VL-8B-Instruct": ("Qwen3VLConfig", dict(
        text_config=dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=False,
                         rms_norm_eps=1e-6, max_position_embeddings=262144, rope_parameters=_QWEN3_ROPE),
        vision_config=dict(**_QWEN3_VISION_8B, **_QWEN3_VISION, out_hidden_size=4096), tie_word_embeddings=False)),
}
# Image processor bounds of the published preprocessor_config.json (a run's model.processor_kwargs override
# them when the processor loads): Qwen2-VL / Qwen2.5-VL 56 x 56 = 3136, Qwen3-VL shortest_edge 65536 (256 x 256).
MIN_PIXELS = {"Qwen2VLConfig": 3136, "Qwen2_5_VLConfig": 3136, "Qwen3VLConfig": 65536}
# ... and their max_pixels: 12845056 (Qwen2-VL / Qwen2.5-VL), longest_edge 16777216 (Qwen3-VL, 4096 x 4096).
MAX_PIXELS = {"Qwen2VLConfig": 12845056, "Qwen2_5_VLConfig": 12845056, "Qwen3VLConfig": 16777216}
FAMILY = {"Qwen2VLConfig": "qwen2_vl", "Qwen2_5_VLConfig": "qwen2_5_vl", "Qwen3VLConfig": "qwen3_vl"}


def published(name: str) -> tuple[str, dict]:
    """(config class name, config kwargs) of a published model; a clear error for one we lack."""
    if name not in ARCH:
        raise ValueError(f"{name!r}: no published architecture in src/vlmrl/models/published.py (known: "
                         f"{', '.join(ARCH)}); add its config.json numbers there")
    return ARCH[name]


def text_dims(name: str) -> dict:
    """hidden_size, num_hidden_layers, vocab_size, head_dim, num_key_value_heads of its language model."""
    text = published(name)[1]["text_config"]
    return {"hidden_size": text["hidden_size"], "num_hidden_layers": text["num_hidden_layers"],
            "vocab_size": text["vocab_size"], "num_key_value_heads": text["num_key_value_heads"],
            "head_dim": text.get("head_dim", text["hidden_size"] // text["num_attention_heads"])}


def build_config(name: str, **overrides):
    """The transformers config of a published model; `overrides` set top-level keys (token ids)."""
    import copy

    import transformers

    kind, kwargs = published(name)
    return getattr(transformers, kind)(**copy.deepcopy(kwargs), **overrides)
