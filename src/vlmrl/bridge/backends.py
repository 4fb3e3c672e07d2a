"""Model backends of the bridging passes: one small interface, three implementations.

A backend turns a list of `Request`s (a user prompt, its images, a seed) into one `Reply` each (the text,
whether it stopped or hit the token limit, how many tokens it generated, or the error). Sampling
(`Sampling`) is the pass's, so one backend serves several passes.

* `HFBackend`: Hugging Face `generate` on a checkpoint loaded by `models.loading.load_model`, with the
  rollout backend's pieces (`rollout.hf`: vision special tokens suppressed, completions cut at the first
  EOS) and the chat formatting every other path uses (`data.prompts`). HF draws a batch from one
  generator: the seed of its first request seeds the batch. Text-only requests are batched apart from
  image ones (the processor takes no image list for them).
* `VLLMBackend`: vLLM offline (`LLM.generate` with `SamplingParams`, vLLM's documented API; per-request
  seeds). `vllm` is imported when the backend first generates, with a clear error when it is missing
  (`bash install.sh` installs it; `--no-vllm` leaves it out; docs/vllm.md).
* `HTTPBackend`: any OpenAI-compatible chat-completions server (`vllm serve`, DeepSeek's API,
  `python -m vlmrl.bridge.serve`): images as base64 `image_url` parts, `reasoning_content` (vLLM's
  reasoning parser, DeepSeek's API) put back as the `<think>...</think>` block, at most `max_concurrency`
  requests in flight, a timeout per request, retries with exponential backoff (honouring `Retry-After`) on
  connection errors, timeouts, 408 / 429 / 5xx and unreadable bodies. Other 4xx are not retried (the request
  is wrong). A request that still fails is a `Reply` with `error` set: the pipeline drops the item as
  `model_error` and tries it again on the next run. The API key is read from `$<api_key_env>` when set.
"""
from __future__ import annotations

import base64
import io
import json
import re
import socket
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..infra.chat_http import post_chat_completion
from ..schema import DTYPE_NAMES


class BackendError(RuntimeError):
    """A backend that cannot run at all (a missing package, a model that cannot load)."""


@dataclass(frozen=True)
class Request:
    prompt: str
    images: tuple = field(default=(), compare=False)
    seed: int = 0


@dataclass(frozen=True)
class Reply:
    text: str = ""
    finish_reason: str = "stop"   # stop | length | error
    tokens: int = 0               # generated tokens (EOS included where the backend counts it)
    error: str | None = None
    prompt_tokens: int = 0


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float = 0.0      # 0: greedy
    top_p: float = 1.0


def _positive(**values) -> None:
    for key, value in values.items():
        if value is None or value <= 0:
            raise ValueError(f"{key}={value} must be > 0")


# ------------------------------------------------------------------------------------------------ HF
class HFBackend:
    kind = "hf"

    def __init__(self, model: str | None = None, dtype: str = "float32", attn_implementation: str = "sdpa",
                 batch_size: int = 8, processor_kwargs: dict | None = None):
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype={dtype!r}: choose one of {sorted(DTYPE_NAMES)}")
        _positive(batch_size=batch_size)
        self.model, self.dtype, self.attn_implementation = model, dtype, attn_implementation
        self.batch_size, self.processor_kwargs = batch_size, dict(processor_kwargs or {})
        self._loaded = None

    @property
    def name(self) -> str:
        return f"hf:{self.model}"

    def _load(self):
        if self._loaded is None:
            from ..models.loading import load_model

            self._loaded = load_model(self.model, dtype=self.dtype, attn_implementation=self.attn_implementation,
                                      trainable=False, processor_kwargs=self.processor_kwargs)
        return self._loaded

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(requests)
        for with_images in (True, False):
            index = [i for i, r in enumerate(requests) if bool(r.images) == with_images]
            for start in range(0, len(index), self.batch_size):
                chunk = index[start:start + self.batch_size]
                for i, reply in zip(chunk, self._generate([requests[i] for i in chunk], sampling)):
                    replies[i] = reply
        return replies

    def _generate(self, requests: list[Request], sampling: Sampling) -> list[Reply]:
        from ..data.prompts import prompt_text

        processor, _ = self._load()
        texts = [prompt_text(processor, {"images": r.images, "problem": r.prompt}) for r in requests]
        images = [list(r.images) for r in requests] if requests[0].images else None
        return self.generate_texts(texts, images, sampling, requests[0].seed)

    def generate_texts(self, texts: list[str], images: list[list] | None, sampling: Sampling, seed: int) -> list[Reply]:
        """Generate from chat-formatted prompt texts (with their images, or None for text only)."""
        import torch

        from ..rollout.hf import completion_mask_from_ids, vision_token_ids

        processor, model = self._load()
        tokenizer = processor.tokenizer
        inputs = processor(text=texts, images=images, return_tensors="pt", padding=True,
                           padding_side="left").to(model.device)
        torch.manual_seed(seed)
        sample = sampling.temperature > 0
        kwargs = dict(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0) if sample else {}
        eos = tokenizer.eos_token_id
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=sampling.max_new_tokens, do_sample=sample,
                                 suppress_tokens=vision_token_ids(tokenizer), eos_token_id=[eos],
                                 pad_token_id=tokenizer.pad_token_id, **kwargs)
        completion = out[:, inputs["input_ids"].shape[1]:]
        mask = completion_mask_from_ids(completion, [eos])
        stopped = (completion == eos).any(dim=1).tolist()
        decoded = tokenizer.batch_decode(torch.where(mask.bool(), completion, tokenizer.pad_token_id),
                                         skip_special_tokens=True)
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        return [Reply(text, "stop" if done else "length", int(n), prompt_tokens=int(p)) for text, done, n, p in
                zip(decoded, stopped, mask.sum(dim=1).tolist(), prompt_tokens)]


# ---------------------------------------------------------------------------------------------- vLLM
class VLLMBackend:
    kind = "vllm"

    def __init__(self, model: str | None, *, dtype: str, batch_size: int, gpu_memory_utilization: float,
                 max_model_len: int | None, tensor_parallel_size: int, enforce_eager: bool, max_images_per_prompt: int,
                 env: dict | None):
        _positive(batch_size=batch_size, gpu_memory_utilization=gpu_memory_utilization,
                  tensor_parallel_size=tensor_parallel_size, max_images_per_prompt=max_images_per_prompt)
        if max_model_len is not None:
            _positive(max_model_len=max_model_len)
        self.model, self.dtype, self.batch_size = model, dtype, batch_size
        self.env = dict(env or {})  # set before vLLM is imported unless already in the environment
        self.engine_args = dict(dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                                tensor_parallel_size=tensor_parallel_size, enforce_eager=enforce_eager,
                                limit_mm_per_prompt={"image": max_images_per_prompt})
        self._llm = self._processor = None

    @property
    def name(self) -> str:
        return f"vllm:{self.model}"

    @staticmethod
    def _vllm():
        try:
            import vllm
        except ImportError as exc:
            raise BackendError("the vllm backend needs the `vllm` package (`bash install.sh` installs it; not with "
                               "--no-vllm). Use the hf backend, or serve the model with vLLM elsewhere and use "
                               "the http backend") from exc
        return vllm

    def _load(self):
        if self._llm is None:
            from ..rollout.vllm import set_engine_env, start_engine

            set_engine_env(self.env)  # before the import check below imports vLLM
            self._vllm()
            from transformers import AutoProcessor

            self._processor = AutoProcessor.from_pretrained(self.model)
            self._llm = start_engine(self.model, self._processor, self.env,
                                     **{k: v for k, v in self.engine_args.items() if v is not None})
        return self._llm, self._processor

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply]:
        from ..data.prompts import prompt_text

        llm, processor = self._load()
        vllm = self._vllm()
        prompts = []
        for r in requests:
            prompt = {"prompt": prompt_text(processor, {"images": r.images, "problem": r.prompt})}
            if r.images:
                prompt["multi_modal_data"] = {"image": r.images[0] if len(r.images) == 1 else list(r.images)}
            prompts.append(prompt)
        top_p = sampling.top_p if sampling.temperature > 0 else 1.0
        params = [vllm.SamplingParams(max_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
                                      top_p=top_p, seed=r.seed) for r in requests]
        outputs = llm.generate(prompts, params, use_tqdm=False)
        return [Reply(o.outputs[0].text, "length" if o.outputs[0].finish_reason == "length" else "stop",
                      len(o.outputs[0].token_ids), prompt_tokens=len(o.prompt_token_ids or ())) for o in outputs]


# ---------------------------------------------------------------------------------------------- HTTP
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
_LEADING_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def image_url(image, image_format: str = "png") -> dict:
    """An OpenAI `image_url` content part holding the image as a base64 data URL."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format.upper())
    data = base64.b64encode(buffer.getvalue()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/{image_format};base64,{data}"}}


def reply_from(body: dict) -> Reply:
    """A Reply from a chat-completions response body (KeyError / TypeError / IndexError when it is not one)."""
    choice = body["choices"][0]
    message = choice["message"]
    content = message.get("content") or ""
    thinking = message.get("reasoning_content") or message.get("reasoning")
    if not isinstance(content, str):
        raise TypeError(f"message content is {type(content).__name__}, not text")
    if thinking:  # the server split the thinking off: it is the think block (any echoed in the content goes)
        content = f"<think>\n{thinking}\n</think>\n{_LEADING_THINK.sub('', content, count=1)}"
    usage = body.get("usage") or {}
    return Reply(content, "length" if choice.get("finish_reason") == "length" else "stop",
                 int(usage.get("completion_tokens") or 0), prompt_tokens=int(usage.get("prompt_tokens") or 0))


class HTTPBackend:
    kind = "http"

    def __init__(self, base_url: str, model: str | None, *, api_key_env: str, batch_size: int, max_concurrency: int,
                 timeout_s: float, retries: int, retry_wait_s: float, max_retry_wait_s: float, image_format: str):
        if not str(base_url).startswith(("http://", "https://")):
            raise ValueError(f"base_url={base_url!r}: expected http://host:port/v1 or https://...")
        if not model:
            raise ValueError(f"model={model!r}: give the served model's name (what the server's /v1/models lists)")
        _positive(batch_size=batch_size, max_concurrency=max_concurrency, timeout_s=timeout_s)
        if retries < 0 or retry_wait_s < 0 or max_retry_wait_s < 0:
            raise ValueError(f"retries={retries}, retry_wait_s={retry_wait_s}, max_retry_wait_s={max_retry_wait_s} "
                             f"must be >= 0")
        self.base_url, self.model, self.api_key_env = base_url.rstrip("/"), model, api_key_env
        self.batch_size, self.max_concurrency, self.timeout_s = batch_size, max_concurrency, timeout_s
        self.retries, self.retry_wait_s, self.max_retry_wait_s = retries, retry_wait_s, max_retry_wait_s
        self.image_format = image_format

    @property
    def name(self) -> str:
        return f"http:{self.model}@{self.base_url}"

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            return list(pool.map(lambda r: self.complete(r, sampling), requests))

    def body(self, request: Request, sampling: Sampling) -> dict:
        content = (request.prompt if not request.images else
                   [image_url(image, self.image_format) for image in request.images]
                   + [{"type": "text", "text": request.prompt}])
        body = {"model": self.model, "messages": [{"role": "user", "content": content}],
                "max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature, "seed": request.seed}
        if sampling.temperature > 0:
            body["top_p"] = sampling.top_p
        return body

    def complete(self, request: Request, sampling: Sampling) -> Reply:
        """One request with retries: the Reply, or a Reply whose `error` says why the last try failed."""
        data = json.dumps(self.body(request, sampling)).encode()
        last = "no try made"
        for attempt in range(self.retries + 1):
            try:
                return self._post(data)
            except _Retryable as failure:
                last = str(failure)
                if attempt == self.retries:
                    break
                wait = self.retry_wait_s * 2 ** attempt if failure.retry_after is None else failure.retry_after
                time.sleep(min(wait, self.max_retry_wait_s))
            except urllib.error.HTTPError as failure:  # a status not worth retrying: the request itself is wrong
                return Reply(finish_reason="error", error=f"{self.base_url}: HTTP {failure.code}: {_detail(failure)}")
        return Reply(finish_reason="error", error=f"{self.base_url}: {self.retries + 1} tries failed, last: {last}")

    def _post(self, data: bytes) -> Reply:
        try:
            raw = post_chat_completion(self.base_url, data, self.api_key_env, self.timeout_s)
        except urllib.error.HTTPError as error:
            if error.code in RETRY_STATUSES:
                raise _Retryable(f"HTTP {error.code}: {_detail(error)}", _retry_after(error)) from None
            raise
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as error:
            raise _Retryable(f"{type(error).__name__}: {getattr(error, 'reason', error)}") from None
        try:
            return reply_from(json.loads(raw.decode()))
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise _Retryable(f"unreadable reply ({type(error).__name__}: {error}): {raw[:200]!r}") from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        return error.read().decode(errors="replace")[:300]
    except Exception:  # the body is gone or unreadable: the status says enough
        return str(error.reason)


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    try:
        return max(0.0, float(error.headers.get("Retry-After")))
    except (TypeError, ValueError):
        return None
