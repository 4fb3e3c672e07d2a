"""A small OpenAI-compatible chat-completions server for a local checkpoint (HF generate).

    python -m vlmrl.bridge.serve --model <checkpoint dir or hub id> [--host 127.0.0.1] [--port 8000]

It exists so the http backend can be tested against a real server on the loopback address where vLLM
cannot be installed (`vllm serve <model>` is the server to use on a GPU; the client is the same). It
serves the subset of the API the bridge uses:

  POST /v1/chat/completions   {model, messages, max_tokens | max_completion_tokens, temperature, top_p,
                              seed}; content a string or a list of `text` and `image_url` parts (base64
                              `data:` URLs only: the server reaches nothing outside). Replies with
                              `choices[0].message.content`, `finish_reason` (stop / length) and `usage`.
  GET  /v1/models, /health

Requests are served by threads; generation holds a lock (one at a time), so concurrent clients queue.
Unsupported fields (`n` > 1, `stream`) and a `model` other than the served name are errors, as in vLLM.
With `--port 0` the system picks a free port; the first line printed names the URL.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .backends import HFBackend, Sampling


class RequestError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_image(url: str):
    from PIL import Image

    if not url.startswith("data:") or ";base64," not in url:
        raise RequestError("image_url: only base64 data: URLs are served (this server fetches nothing)")
    try:
        return Image.open(io.BytesIO(base64.b64decode(url.split(";base64,", 1)[1], validate=True))).convert("RGB")
    except Exception as error:  # any undecodable payload is the client's error
        raise RequestError(f"image_url: cannot decode the image ({type(error).__name__}: {error})") from None


def chat_messages(messages) -> tuple[list[dict], list]:
    """OpenAI messages -> (messages for the processor's chat template, the images in order)."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages: expected a non-empty list")
    converted, images = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RequestError(f"messages[{i}]: expected {{role: system|user|assistant, content}}")
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise RequestError(f"messages[{i}].content: expected a string or a list of parts")
        out = []
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                out.append({"type": "text", "text": part["text"]})
            elif kind == "image_url" and isinstance(part.get("image_url"), dict):
                images.append(decode_image(str(part["image_url"].get("url", ""))))
                out.append({"type": "image"})
            else:
                raise RequestError(f"messages[{i}].content: unsupported part {str(part)[:80]}")
        converted.append({"role": message["role"], "content": out})
    return converted, images


class ChatServer:
    def __init__(self, model: str, served_name: str | None = None, dtype: str = "float32",
                 default_max_tokens: int = 256):
        self.backend = HFBackend(model, dtype=dtype, batch_size=1)
        self.name = served_name or model
        self.default_max_tokens = default_max_tokens
        self.lock = threading.Lock()
        self.backend._load()  # load now: the first request should not pay for it

    def complete(self, body: dict) -> dict:
        if body.get("model") not in (None, self.name):
            raise RequestError(f"The model `{body.get('model')}` does not exist (this server serves `{self.name}`)", 404)
        if body.get("stream") or (body.get("n") or 1) != 1:
            raise RequestError("stream and n > 1 are not supported")
        messages, images = chat_messages(body.get("messages"))
        try:
            max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or self.default_max_tokens)
            temperature = float(body.get("temperature", 1.0))
            top_p = float(body.get("top_p", 1.0))
            seed = int(body.get("seed") or 0)
        except (TypeError, ValueError) as error:
            raise RequestError(f"bad sampling field: {error}") from None
        if max_tokens < 1 or temperature < 0 or not 0 < top_p <= 1:
            raise RequestError(f"max_tokens={max_tokens}, temperature={temperature}, top_p={top_p} out of range")
        processor, _ = self.backend._load()
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        with self.lock:
            reply = self.backend.generate_texts([text], [images] if images else None,
                                                Sampling(max_tokens, temperature, top_p), seed)[0]
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                             "finish_reason": reply.finish_reason}],
                "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.tokens,
                          "total_tokens": reply.prompt_tokens + reply.tokens}}


def handler(server: ChatServer, log_requests: bool = False):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"object": "error", "error": {"message": message, "code": status}})

        def do_GET(self):
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": server.name, "object": "model"}]})
            elif self.path.rstrip("/") == "/health":
                self._send(200, {})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self):
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._error(404, f"no route {self.path}")
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not isinstance(body, dict):
                    raise RequestError("the body must be a JSON object")
                self._send(200, server.complete(body))
            except json.JSONDecodeError as error:
                self._error(400, f"the body is not JSON: {error}")
            except RequestError as error:
                self._error(error.status, str(error))
            except Exception as error:  # a generation failure is the server's, not the client's
                self._error(500, f"{type(error).__name__}: {error}")

        def log_message(self, fmt, *args):
            if log_requests:
                super().log_message(fmt, *args)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint dir or hub id (loaded with load_model)")
    parser.add_argument("--served-model-name", default=None, help="the name clients send (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: a free port (printed)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-tokens", type=int, default=256, help="when a request gives none")
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args(argv)
    from ..infra.quiet import quiet_third_party

    quiet_third_party()
    chat = ChatServer(args.model, args.served_model_name, args.dtype, args.max_tokens)
    httpd = ThreadingHTTPServer((args.host, args.port), handler(chat, args.log_requests))
    httpd.daemon_threads = True
    print(f"[vlmrl] serving {chat.name} at http://{args.host}:{httpd.server_port}/v1", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
