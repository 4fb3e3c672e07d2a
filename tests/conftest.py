import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir

from vlmrl.infra.resolvers import register

register()

CONF = str(Path(__file__).resolve().parents[1] / "conf")

# Small, fast overrides for end-to-end runs on the tiny model: the smoke scale (a 60-step instruct
# stage, so that some sampled completions are well-formed and GRPO gets a non-zero advantage; a
# handful of records) plus evaluation / checkpoint cadences that fire within a few steps.
TINY_FAST = [
    "+scale=smoke", "model.max_new_tokens=16", "model.eval_max_new_tokens=16",
    "eval_every=2", "ckpt_every=2", "logger.samples_every=2",
]


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """Keep model builds, W&B and other caches inside the test session's temp dir."""
    root = tmp_path_factory.mktemp("cache")
    for var, sub in (("VLMRL_CACHE", "vlmrl"), ("WANDB_DIR", "wandb"), ("XDG_CACHE_HOME", "xdg"),
                     ("WANDB_CACHE_DIR", "wandb_cache"), ("WANDB_CONFIG_DIR", "wandb_config"),
                     ("VLLM_CACHE_ROOT", "vllm")):
        os.environ[var] = str(root / sub)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["WANDB_SILENT"] = "true"
    yield root


def compose_cfg(overrides=(), config_name="config"):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def check(cfg):
    """Everything train() checks before a model loads or a start is built: `config.resolve` (types, paths,
    ranges), the parts each checking its own options (`assemble.components`), the start's build specs
    (`starts.start.check_builds`); -> the parts. Real data is not read."""
    from vlmrl.assemble import components
    from vlmrl.config import resolve
    from vlmrl.starts.start import check_builds

    resolve(cfg)
    parts = components(cfg)
    check_builds(cfg)
    return parts


def target_kwargs(node, **overrides) -> dict:
    """The arguments a composed `_target_` node gives its class (plain values, interpolations resolved), with
    `overrides` in place of some: for a test that builds the class directly, its defaults still from the YAML."""
    from omegaconf import OmegaConf

    kwargs = OmegaConf.to_container(node, resolve=True)
    del kwargs["_target_"]
    return {**kwargs, **overrides}


@pytest.fixture
def endpoint():
    """A chat-completions server on localhost: answers from `replies` (status, content), then `default`;
    logs each request. `endpoint.url` is its base URL, `endpoint.judge(**kw)` a Judge pointed at it."""
    from vlmrl.scoring import Judge

    state = SimpleNamespace(requests=[], replies=[], default=(500, None))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            status, content = state.replies.pop(0) if state.replies else state.default
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    state.judge = lambda **kw: Judge(base_url=state.url, retry_wait_s=0, timeout_s=5, **kw)
    state.temperatures = lambda: [r["body"]["temperature"] for r in state.requests]
    yield state
    server.shutdown()
    server.server_close()
