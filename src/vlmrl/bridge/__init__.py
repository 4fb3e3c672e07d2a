"""Vision-R1's cold-start data by modality bridging (arXiv 2503.06749 Sec. 3.1, Fig. 2), `python bridge.py`.

The algorithm, per item (image(s), question, gold answer):
  1. pseudo_cot   a VLM, given the image, the question and the answer, writes a pseudo chain of thought;
  2. description  the VLM, given the image, the question and the pseudo-CoT, describes the image with
                  every detail needed to answer;
  3. reasoning    a text-only reasoner (DeepSeek-R1 in the paper) answers from the description and the
                  question, thinking step by step;
  4. filter       kept when the final answer matches the gold under the record's own verifier (the
                  rewards' `vlmrl.scoring.VERIFIERS`) and the output is consistent (one final answer,
                  well-formed tags, the reasoning's last stated result is the final answer);
  5. format       the reasoning and answer as `<think>\\n...\\n</think>\\n<answer> Final Answer:X </answer>`,
                  paired with the images in Vision-R1-cold's sharegpt schema (`data=bridged` trains on it).

Modules: `prompts` (templates), `filter` (pure checks, drop reasons), `backends` (HF generate, vLLM
offline, OpenAI-compatible HTTP), `store` (resumable per-pass files), `pipeline` (the pass runner and
its report), `writer` (records, images, summary), `inputs` (any `data=` option), `config` (validation),
`run` (bridge.py's job), `serve` (a small OpenAI-compatible server for a local checkpoint).

Where this deviates from, or fills in for, the paper (which releases no code for this pipeline):
  * The prompts' wording is ours: our notes summarise each step but do not quote Fig. 2's prompts.
  * "Logically inconsistent" outputs are not defined by the paper; our consistency checks are the
    ones above (`filter.py` says exactly how the last stated result is found and compared).
  * The paper filters only the final outputs; we also drop blank replies and model errors at every
    pass (a reasoner cut off at its token limit too), each under its own reason.
  * Whether the description may state the answer, the sampling settings of the VLM steps and the token
    limits are not given; conf/bridge.yaml says what we chose.
"""
