"""Fixtures for the explorer tests: a tiny random GPT with GPT-2's tokenizer, the app behind an
ASGI test client, a live uvicorn server on a free port, and a headless Chromium; and a tiny
real training run with three kept checkpoints, served by a second app, for the timeline."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch

from gpt2lab.model import GPT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TINY = dict(vocab_size=50257, block_size=64, n_layer=2, n_head=4, n_embd=32, init="torch_default")


def write_metrics(run_dir: Path, n_steps: int = 40, eval_every: int = 10) -> list[dict]:
    """A metrics.jsonl in the training loop's format (see gpt2lab.train.metrics)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for step in range(1, n_steps + 1):
        loss = 10.0 * 0.95**step
        records.append(
            {
                "step": step,
                "kind": "train",
                "loss": loss,
                "lr": 1e-3 * min(1, step / 10),
                "grad_norm": 1.0 + 1 / step,
                "tokens": 512 * step,
                "tokens_per_s": 1000.0,
            }
        )
        if step % eval_every == 0:
            records.append(
                {
                    "step": step,
                    "kind": "eval",
                    "val_loss": loss + 0.1,
                    "val_ppl": float(torch.tensor(loss + 0.1).exp()),
                }
            )
            layers = {"embed": 0.5 / step, "block0": 1.0 / step, "block1": 2.0 / step, "final": 0.1}
            records.append(
                {
                    "step": step,
                    "kind": "monitor",
                    "grad_norm": layers,
                    "update_ratio": {k: 1e-3 for k in layers},
                    "attn_entropy": {"block0": [0.5, 0.6, 0.7, 0.8]},
                }
            )
    with (run_dir / "metrics.jsonl").open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.write('{"step": 41, "kind": "tra')  # a half-written last line, as during training
    return records


@pytest.fixture(scope="session")
def model(tiny_gpt) -> GPT:
    """2 layers × 4 heads; torch's default init gives peaked (non-uniform) attention."""
    return tiny_gpt(**TINY)


@pytest.fixture(scope="session")
def hf_model(model, tmp_path_factory):
    """The same weights in transformers' own GPT-2 (eager attention, so it returns weights)."""
    from gpt2lab.pretrained import save_pretrained

    transformers = pytest.importorskip("transformers")
    directory = tmp_path_factory.mktemp("hf")
    assert save_pretrained(model, directory, format="hf") == "hf"
    return transformers.GPT2LMHeadModel.from_pretrained(
        directory, attn_implementation="eager"
    ).eval()


@pytest.fixture(scope="session")
def tokenizer():
    from gpt2lab.tokenizer import get_tokenizer

    return get_tokenizer("gpt2")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "tiny"
    write_metrics(path)
    return path


@pytest.fixture(scope="session")
def app(model, tokenizer, run_dir):
    from gpt2lab.viewer.server import create_app

    return create_app(model, tokenizer, run_dir, name="tiny")


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False)


def serve_in_thread(app):
    """Serve `app` with uvicorn in a thread on a free loopback port; yields its URL."""
    import uvicorn

    from gpt2lab.viewer.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def live_server(app):
    """The app served by uvicorn in a thread on a free loopback port; yields its URL."""
    yield from serve_in_thread(app)


# ---------------------------------------------------------------------------------------------
# A real training run with kept checkpoints (the timeline)
# ---------------------------------------------------------------------------------------------

RUN_PROBES = 8  # stories probes per checkpoint: keeps each one well under a second


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, checkpointed_run) -> Path:
    """24 steps of a 2-layer, 32-wide model on a 300-token stories vocabulary with the real
    trainer; --keep-every 8 with keep_last 1 keeps steps 8, 16, 24 (a few seconds)."""
    return checkpointed_run(
        tmp_path_factory.mktemp("trained"), steps=24, every=8, tokens=60_000, name="tiny-run"
    )


@pytest.fixture(scope="session")
def run_app(trained_run):
    """The explorer as `gpt2lab serve --model RUN` starts it: the run's model, tokenizer
    and curves."""
    from gpt2lab.pretrained import load_model_and_tokenizer
    from gpt2lab.viewer.api import Limits
    from gpt2lab.viewer.server import create_app

    model, tokenizer, _ = load_model_and_tokenizer(str(trained_run))
    return create_app(
        model, tokenizer, trained_run, name="tiny-run", limits=Limits(timeline_probes=RUN_PROBES)
    )


@pytest.fixture(scope="session")
def run_client(run_app):
    from fastapi.testclient import TestClient

    return TestClient(run_app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False)


@pytest.fixture(scope="session")
def run_server(run_app):
    yield from serve_in_thread(run_app)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (which must never download a browser)."""
    if not CHROMIUM.exists() or not shutil.which(str(CHROMIUM)):
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium)")
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh page; `page.errors` collects console and page errors.

    bypass_csp lets Playwright evaluate its wait conditions, and it also means the escaping
    tests prove the page safe without the help of its Content-Security-Policy.
    """
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(60_000)  # a busy CI machine runs the model slowly
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.errors = errors
    yield page
    context.close()
