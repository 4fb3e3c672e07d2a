"""One POST to an OpenAI-compatible chat-completions endpoint, standard library only: the HTTP call
shared by the LLM judge (scoring/judge.py) and the bridge's `http` backend (bridge/backends.py), which
each keep their own retry policy and reading of the reply."""
from __future__ import annotations

import os
import urllib.request


def post_chat_completion(base_url: str, data: bytes, api_key_env: str | None, timeout_s: float) -> bytes:
    """POST `data` (a JSON body) to `{base_url}/chat/completions` -> the raw response body.

    Sends `Authorization: Bearer $<api_key_env>` when that variable is set (a local server needs none).
    Raises what urllib raises: HTTPError (a status), URLError / TimeoutError / ConnectionError (no reply)."""
    headers = {"Content-Type": "application/json"}
    if api_key_env and os.environ.get(api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[api_key_env]}"
    request = urllib.request.Request(f"{base_url.rstrip('/')}/chat/completions", data=data, headers=headers,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()
