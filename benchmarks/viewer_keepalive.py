"""Keep-alive latency of the web explorer: a request on a reused connection vs a fresh one.

    python benchmarks/viewer_keepalive.py [--requests 200]

Browsers keep connections alive, so every API call of the page after the first rides on a
reused socket. If the server's sockets leave Nagle's algorithm on, each small response waits
for the client's delayed ACK (~40 ms on Linux) there, while a fresh connection does not. The
explorer binds its socket as TCP (`bind_socket`), so asyncio turns TCP_NODELAY on for every
accepted connection. This script serves a tiny model with uvicorn twice in the same run, once
with `bind_socket` and once with a socket made the old way (protocol 0, which asyncio does not
recognise as TCP), and prints the median GET /api/info latency on a fresh connection and on a
kept-alive one for each; the goal: keep-alive within 2x fresh.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import threading
import time


def tiny_app():
    import torch

    from gpt2lab.config import GPTConfig
    from gpt2lab.model import GPT
    from gpt2lab.tokenizer import get_tokenizer
    from gpt2lab.viewer.server import create_app

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=50257, block_size=64, n_layer=2, n_head=4, n_embd=32)
    return create_app(GPT(config).eval(), get_tokenizer("gpt2"))


def old_socket() -> socket.socket:
    """A listening socket as the explorer made it before: SOCK_STREAM with protocol 0."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def serve(app, sock: socket.socket):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread


def latencies(port: int, n: int, keep_alive: bool) -> list[float]:
    """Seconds per GET /api/info, on one reused connection or a new one each time."""
    times = []
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        if not keep_alive:
            conn = http.client.HTTPConnection("127.0.0.1", port)
        start = time.perf_counter()
        conn.request("GET", "/api/info")
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        assert response.status == 200
        if not keep_alive:
            conn.close()
    conn.close()
    return times


def main() -> None:
    from gpt2lab.viewer.server import bind_socket

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    app = tiny_app()
    for label, sock in (
        ("bind_socket (TCP)", bind_socket("127.0.0.1", 0)),
        ("protocol 0 (old)", old_socket()),
    ):
        server, thread = serve(app, sock)
        port = sock.getsockname()[1]
        latencies(port, 10, True)  # warm-up
        fresh, kept = [], []
        for _ in range(4):  # alternate, so load changes hit both alike
            fresh += latencies(port, args.requests // 4, keep_alive=False)
            kept += latencies(port, args.requests // 4, keep_alive=True)
        f, k = statistics.median(fresh) * 1e3, statistics.median(kept) * 1e3
        print(f"{label:18}  fresh {f:6.2f} ms   keep-alive {k:6.2f} ms   ratio {k / f:5.2f}x")
        server.should_exit = True
        thread.join(10)


if __name__ == "__main__":
    main()
