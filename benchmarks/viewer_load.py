"""Load test of the web explorer: 8 concurrent clients, 500 mixed requests on loopback.

    python benchmarks/viewer_load.py [--model DIR|RUN|gpt2] [--clients 8] [--requests 500]

The server runs in a child process (uvicorn, as `gpt2lab serve` runs it), by default with a
tiny random GPT (2 layers × 4 heads, GPT-2's tokenizer). The mix: predictions with and
without ablations, attention for random heads, tokenize, info, head roles, the run curves,
the page itself, and ~6 % deliberately bad requests (too long, unknown head, bad JSON, foreign
Host) that must get their 4xx. An *error* is any answer other than the one expected, or no
answer. Prints p50/p95/max latency per kind and overall, and the errors (the goal: 0).

The peer: the same model calls made in-process with no HTTP (`Explorer` methods, serially),
alternating with the HTTP rounds; the ratio of medians is the cost of the web layer plus
queueing behind the model lock.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

TEXTS = [
    "When Mary and John went to the store, John gave a drink to Mary.",
    "The cat sat on the mat. The cat sat on the mat.",
    "In 1905 Einstein published four papers that changed physics.",
    "def add(a, b):\n    return a + b\n",
    "Tom was tired, so he went to bed early. He slept for ten hours.",
]


def tiny_model():
    import torch

    from gpt2lab.config import GPTConfig
    from gpt2lab.model import GPT

    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=50257, block_size=128, n_layer=2, n_head=4, n_embd=64, init="torch_default"
    )
    return GPT(config).eval()


def load(model_spec: str | None):
    """(model, tokenizer): the tiny random GPT, or a real one through the shared resolver."""
    if model_spec is None:
        from gpt2lab.tokenizer import get_tokenizer

        return tiny_model(), get_tokenizer("gpt2")
    from gpt2lab.pretrained import load_model_and_tokenizer

    model, tokenizer, _ = load_model_and_tokenizer(model_spec)
    return model, tokenizer


def write_run(directory: Path) -> Path:
    """A small metrics.jsonl so /api/run has something to read."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "metrics.jsonl").open("w") as f:
        for step in range(1, 201):
            f.write(json.dumps({"step": step, "kind": "train", "loss": 8 / step**0.3, "lr": 1e-3}))
            f.write("\n")
    return directory


def child(port_file: str, model_spec: str | None, run_dir: str) -> None:
    """The server process: bind a free port, write it to port_file, serve forever."""
    import uvicorn

    from gpt2lab.viewer.server import bind_socket, create_app

    model, tokenizer = load(model_spec)
    app = create_app(model, tokenizer, run_dir)
    sock = bind_socket("127.0.0.1", 0)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False)).run(sockets=[sock])


# ---------------------------------------------------------------------------------------------
# The request mix
# ---------------------------------------------------------------------------------------------


def request_mix(n: int, n_layer: int, n_head: int, seed: int = 0) -> list[dict]:
    """n requests: {kind, method, path, json|content, headers, expect}."""
    rng = random.Random(seed)

    def head():
        return {"layer": rng.randrange(n_layer), "head": rng.randrange(n_head)}

    makers = [
        (30, lambda: ("predict", "POST", "/api/predict", {"text": rng.choice(TEXTS), "k": 5}, 200)),
        (
            20,
            lambda: (
                "predict+ablate",
                "POST",
                "/api/predict",
                {"text": rng.choice(TEXTS), "ablate": [head() for _ in range(rng.randint(1, 3))]},
                200,
            ),
        ),
        (
            25,
            lambda: (
                "attention",
                "POST",
                "/api/attention",
                {"text": rng.choice(TEXTS), **head()},
                200,
            ),
        ),
        (6, lambda: ("tokenize", "POST", "/api/tokenize", {"text": rng.choice(TEXTS)}, 200)),
        (4, lambda: ("info", "GET", "/api/info", None, 200)),
        (3, lambda: ("heads", "GET", "/api/heads", None, 200)),
        (3, lambda: ("run", "GET", "/api/run", None, 200)),
        (3, lambda: ("page", "GET", "/", None, 200)),
        (2, lambda: ("bad: too long", "POST", "/api/predict", {"text": "word " * 5000}, 413)),
        (
            2,
            lambda: (
                "bad: unknown head",
                "POST",
                "/api/attention",
                {"text": "hi", "layer": n_layer, "head": 0},
                422,
            ),
        ),
        (1, lambda: ("bad: json", "POST", "/api/predict", b"{oops", 422)),
        (1, lambda: ("bad: host", "GET", "/api/info", "evil.example", 400)),
    ]
    weights = [w for w, _ in makers]
    requests = []
    for _ in range(n):
        kind, method, path, body, expect = rng.choices(makers, weights)[0][1]()
        request = {"kind": kind, "method": method, "path": path, "expect": expect, "headers": {}}
        if kind == "bad: host":
            request["headers"] = {"host": body}
        elif isinstance(body, bytes):
            request["content"] = body
            request["headers"] = {"content-type": "application/json"}
        elif body is not None:
            request["json"] = body
        requests.append(request)
    return requests


def run_http(base: str, requests: list[dict], clients: int) -> tuple[dict, list[str]]:
    """Send `requests` from `clients` threads; ({kind: [seconds]}, [error descriptions])."""
    import httpx

    queue = list(reversed(requests))
    lock = threading.Lock()
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []

    def worker():
        with httpx.Client(base_url=base, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    r = queue.pop()
                kwargs = {k: r[k] for k in ("json", "content") if k in r}
                start = time.perf_counter()
                try:
                    response = http.request(r["method"], r["path"], headers=r["headers"], **kwargs)
                    status = response.status_code
                except httpx.HTTPError as err:
                    status = f"{type(err).__name__}"
                elapsed = time.perf_counter() - start
                with lock:
                    latencies[r["kind"]].append(elapsed)
                    if status != r["expect"]:
                        errors.append(f"{r['kind']}: got {status}, expected {r['expect']}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def direct_call(explorer, r: dict) -> bool:
    """Make request `r`'s model call in-process; False for kinds with no model call."""
    body = r.get("json") or {}
    if r["kind"] == "predict":
        explorer.predict(body["text"], body.get("k", 5))
    elif r["kind"] == "predict+ablate":
        explorer.predict(body["text"], 5, [(h["layer"], h["head"]) for h in body["ablate"]])
    elif r["kind"] == "attention":
        explorer.attention(body["text"], body["layer"], body["head"])
    elif r["kind"] == "tokenize":
        explorer.tokenize(body["text"])
    else:
        return False
    return True


def run_direct(explorer, requests: list[dict]) -> dict:
    """The same successful model calls, in-process and serially: {kind: [seconds]}."""
    latencies: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        start = time.perf_counter()
        if direct_call(explorer, r):
            latencies[r["kind"]].append(time.perf_counter() - start)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(x: float) -> str:
    return f"{1000 * x:8.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model to serve (default: a tiny random GPT)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="HTTP/direct rounds, alternating")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], None if args.child[1] == "-" else args.child[1], args.child[2])
        return 0

    from gpt2lab.viewer.api import Explorer

    tmp = Path(tempfile.mkdtemp(prefix="viewer_load_"))
    run_dir = write_run(tmp / "run")
    port_file = tmp / "port"
    cmd = [sys.executable, __file__, "--child", str(port_file), args.model or "-", str(run_dir)]
    server = subprocess.Popen(cmd)
    try:
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None:
                print("the server process exited", file=sys.stderr)
                return 1
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port_file.read_text()}"
        model, tokenizer = load(args.model)
        explorer = Explorer(model, tokenizer)
        import httpx

        for _ in range(600):  # wait for uvicorn, then warm up (head scores, first forwards)
            try:
                httpx.get(base + "/api/heads", timeout=120).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        explorer.heads()
        info = httpx.get(base + "/api/info").json()
        print(
            f"model: {args.model or 'tiny random GPT'} ({info['n_layer']} layers × "
            f"{info['n_head']} heads, {info['n_params'] / 1e6:.1f}M params); "
            f"{args.clients} clients, {args.requests} requests per round, {args.rounds} rounds"
        )
        http_lat: dict[str, list[float]] = defaultdict(list)
        direct_lat: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        wall = 0.0
        for round_ in range(args.rounds):
            requests = request_mix(args.requests, info["n_layer"], info["n_head"], seed=round_)
            start = time.perf_counter()
            lat, errs = run_http(base, requests, args.clients)
            wall += time.perf_counter() - start
            errors += errs
            for k, v in lat.items():
                http_lat[k] += v
            for k, v in run_direct(explorer, requests).items():
                direct_lat[k] += v
        report(http_lat, direct_lat, errors, wall, args)
        return 0 if not errors else 1
    finally:
        server.terminate()
        server.wait(10)


def report(http_lat, direct_lat, errors, wall, args) -> None:
    print(
        f"\n{'kind':<18}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'direct p50':>12}{'ratio':>8}"
    )
    for kind in sorted(http_lat, key=lambda k: -len(http_lat[k])):
        v = http_lat[kind]
        d = direct_lat.get(kind)
        peer = f"{ms(statistics.median(d)):>12}" if d else f"{'':>12}"
        ratio = f"{statistics.median(v) / statistics.median(d):>8.1f}" if d else ""
        print(
            f"{kind:<18}{len(v):>5}{ms(percentile(v, 0.5))}{ms(percentile(v, 0.95))}"
            f"{ms(max(v))}{peer}{ratio}"
        )
    every = [x for v in http_lat.values() for x in v]
    n = len(every)
    print(
        f"\nall: {n} requests in {wall:.1f} s ({n / wall:.0f} req/s); "
        f"p50 {1000 * percentile(every, 0.5):.1f} ms, p95 {1000 * percentile(every, 0.95):.1f} ms; "
        f"errors: {len(errors)}"
    )
    for line in errors[:20]:
        print("  error:", line)


if __name__ == "__main__":
    sys.exit(main())
