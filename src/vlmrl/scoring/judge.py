"""An LLM judge over any OpenAI-compatible chat-completions endpoint, standard library only.

`complete` is one POST of `{model, messages: [one user message], temperature, max_tokens}` to
`{base_url}/chat/completions`, with `Authorization: Bearer $<api_key_env>` when that variable is set (a local
vLLM server needs none). `ask` is VLMEvalKit's retry loop around it: try i = 0..retries-1 at temperature
i * 0.5, return the first reply that arrives and passes `accept`, else None. The defaults are Vision-R1's
judge settings (docs/datasets.md#mathvista-scoring): gpt-4o-mini-2024-07-18, 128 new tokens, 5 tries.
"""
from __future__ import annotations

import json
import time
import urllib.error
from dataclasses import dataclass
from typing import Callable

from ..infra.chat_http import post_chat_completion


class JudgeError(RuntimeError):
    """One request that gave no usable reply (network, HTTP status, or an unexpected body)."""


@dataclass
class Judge:
    base_url: str
    model: str = "gpt-4o-mini-2024-07-18"
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 128
    retries: int = 5
    timeout_s: float = 60
    retry_wait_s: float = 1.0  # pause between tries, so a rate limit has a chance to clear

    def __post_init__(self):
        if self.retries < 1:
            raise ValueError(f"judge.retries={self.retries} must be >= 1")

    def complete(self, prompt: str, temperature: float) -> str:
        """The judge's reply to `prompt` (one request, no retry); JudgeError when there is none."""
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": temperature, "max_tokens": self.max_tokens}
        try:
            raw = post_chat_completion(self.base_url, json.dumps(body).encode(), self.api_key_env, self.timeout_s)
            content = json.loads(raw.decode())["choices"][0]["message"]["content"]
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
            raise JudgeError(f"{self.base_url}: {error}") from error
        if not isinstance(content, str):
            raise JudgeError(f"{self.base_url}: no text in the reply ({content!r})")
        return content

    def ask(self, prompt: str, accept: Callable[[str], bool] = lambda reply: True) -> str | None:
        """The first accepted reply over `retries` tries at temperatures 0, 0.5, 1.0, ...; None if none."""
        for i in range(self.retries):
            if i and self.retry_wait_s:
                time.sleep(self.retry_wait_s)
            try:
                reply = self.complete(prompt, temperature=i * 0.5)
            except JudgeError:
                continue
            if accept(reply):
                return reply
        return None
