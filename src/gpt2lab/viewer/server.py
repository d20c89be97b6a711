"""The explorer's web app: one page, a small JSON API, and the guards around them.

    app = create_app(model, tokenizer, run_dir="runs/tiny")    # an ASGI app (FastAPI)
    serve(model, tokenizer, host="127.0.0.1", port=8000)       # runs it with uvicorn

Endpoints (OpenAPI schema and a try-it page at /docs, served offline):

    GET  /                 the page (`?text=` preloads the text box)
    GET  /api/info         model shape, caps, whether a run (with kept checkpoints) is attached
    POST /api/tokenize     {text} -> tokens
    POST /api/predict      {text, k, ablate: [{layer, head}]} -> top-k per position (+ Δ log p)
    POST /api/attention    {text, layer, head, ablate} -> the head's (T, T) pattern + thumbnails
    GET  /api/heads        head-role score grids and roles (computed once, on first call)
    GET  /api/run          the training run's curves (404 without --run)
    GET  /api/neurons      ?layer= -> every MLP neuron of the layer: top activation, labels
    GET  /api/neuron       ?layer=&neuron= -> its top examples, histogram, the tokens it writes
    POST /api/token-neurons {text, position, k} -> the most active neurons at that token
    GET  /api/embeddings   ?space=&layer=&group= -> a 2-D PCA of an embedding space
    GET  /api/timeline     the run's loss curves, slope changes and kept checkpoint steps
    GET  /api/timeline/checkpoint ?step= -> that checkpoint's val loss, sample, roles, cloze

Safety, for a server that runs a model on the user's machine:
- The Host header must name the bound host (loopback names for a loopback bind; IP literals,
  localhost and this machine's name for 0.0.0.0), which defeats DNS rebinding: a page on
  evil.example whose name re-resolves to 127.0.0.1 still sends `Host: evil.example`.
- Request bodies are capped (413); no endpoint reads a path the client gives (the run directory
  is fixed at start-up).
- Token text reaches the page as JSON and is put into the DOM as text, never as HTML; the one
  server-side insertion (the preloaded text inside a <script> block) escapes <, > and &.
- Model calls are serialised by `Explorer.lock`; a failing request answers 4xx/500 as JSON
  and the server keeps serving.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from gpt2lab.errors import GPT2LabError
from gpt2lab.interp.html import safe_json
from gpt2lab.model import device_of
from gpt2lab.viewer import schemas
from gpt2lab.viewer.api import DEFAULT_LIMITS, Explorer, Limits, TooLong
from gpt2lab.viewer.checkpoints import RunTimeline
from gpt2lab.viewer.metrics import RunMetrics

STATIC = Path(__file__).parent / "static"
BOOT_MARK = "<!--BOOT-->"
MAX_BODY = 1 << 20  # bytes; 20,000 characters of text is at most ~80 kB of JSON
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
DEFAULT_TEXT = (
    "When Mary and John went to the store, John gave a drink to Mary. "
    "The cat sat on the mat. The cat sat on the mat."
)
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


# ---------------------------------------------------------------------------------------------
# Guards: Host header and body size
# ---------------------------------------------------------------------------------------------


HOST_HEADER = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?")
"""A Host header exactly as RFC 9110 allows it: a name or [IPv6] literal, then an optional port."""


def host_name(header: str) -> str:
    """The name part of a Host header: '127.0.0.1:8000' -> '127.0.0.1', '[::1]:80' -> '::1';
    '' for anything else ('localhost:8765@evil.example', 'a b', '::1' without brackets)."""
    match = HOST_HEADER.fullmatch(header.strip().lower())
    if match is None:
        return ""
    return match["ipv6"] or match["name"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(header: str, bind_host: str) -> bool:
    """Whether a request's Host header may reach a server bound to `bind_host`.

    Loopback bind: only loopback names. Wildcard bind (0.0.0.0, ::): any IP literal, localhost
    or this machine's name, never another DNS name. Any other bind: exactly that host.
    """
    name = host_name(header)
    if not name:
        return False
    bind = bind_host.strip("[]").lower()
    if is_loopback(bind):
        return name in LOOPBACK_NAMES or is_loopback(name)
    if bind in WILDCARD_HOSTS:
        return is_ip_literal(name) or name in {"localhost", socket.gethostname().lower()}
    return name == bind


FRAME_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
"""Added to every response that does not set its own (the page's CSP already forbids framing)."""


class Guard:
    """ASGI middleware around the app.

    - A foreign Host header is a 400.
    - A body over `max_body` bytes is a 413, whether announced by Content-Length or sent in
      chunks (those are read, up to the cap, before the app sees the request).
    - Every response forbids framing (clickjacking), /docs and /redoc included.
    """

    def __init__(self, app, bind_host: str, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.bind_host = bind_host
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if not host_allowed(headers.get("host", ""), self.bind_host):
            return await _plain_error(send, 400, "invalid Host header")
        too_long = f"request body over {self.max_body} bytes"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _plain_error(send, 413, too_long)
        messages = []
        if length is None:  # chunked (or no body): read it here, up to the cap
            received, more = 0, True
            while more:
                message = await receive()
                received += len(message.get("body", b""))
                if received > self.max_body:
                    return await _plain_error(send, 413, too_long)
                messages.append(message)
                more = message["type"] == "http.request" and message.get("more_body", False)

        async def replay():
            return messages.pop(0) if messages else await receive()

        async def send_framed(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in FRAME_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, replay, send_framed)


async def _plain_error(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def render_page(boot: dict) -> str:
    """index.html with the boot data in its `<script type="application/json">` block.

    `safe_json` escapes <, > and & (and U+2028/9) as JSON escapes (< becomes \\u003c), so text such as '</script>'
    cannot end the block; JSON.parse gives back the same string.
    """
    template = (STATIC / "index.html").read_text(encoding="utf-8")
    return template.replace(BOOT_MARK, safe_json(boot))


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


def create_app(
    model,
    tokenizer,
    run_dir: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    name: str = "",
    limits: Limits = DEFAULT_LIMITS,
):
    """The explorer as an ASGI app, for `model` + `tokenizer` (and a training run's curves).

    `host` is the address the server is bound to; requests must carry a matching Host header.
    """
    explorer = Explorer(model, tokenizer, name=name, limits=limits)
    run = _run_metrics(run_dir)
    timeline = None
    if run is not None:
        timeline = RunTimeline(run.run_dir, device=device_of(model), probes=limits.timeline_probes)
    app = FastAPIOffline(
        title="gpt2lab explorer",
        description="Attention, predictions, head roles and ablations of a GPT, as JSON.",
        version="1",
    )
    app.state.explorer = explorer
    _add_error_handlers(app)

    def info() -> dict:
        has_timeline = timeline is not None and timeline.available()
        return {**explorer.info(), "has_run": run is not None, "has_timeline": has_timeline}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(text: str = Query(DEFAULT_TEXT, max_length=limits.max_chars)) -> HTMLResponse:
        html = render_page({"text": text, "info": info()})
        return HTMLResponse(
            html, headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
        )

    @app.get("/api/info", response_model=schemas.Info)
    def api_info() -> dict:
        """The model's shape, the caps, and whether a training run is attached."""
        return info()

    @app.post("/api/tokenize", response_model=schemas.TokenizeResponse, responses=ERRORS)
    def api_tokenize(req: schemas.TextRequest) -> dict:
        """The text's tokens, each with its id and text."""
        return explorer.tokenize(req.text)

    @app.post("/api/predict", response_model=schemas.PredictResponse, responses=ERRORS)
    def api_predict(req: schemas.PredictRequest) -> dict:
        """Top-k next-token predictions at every position; with `ablate`, the ablated
        predictions and Δ log p of each position's target."""
        return explorer.predict(req.text, req.k, [(h.layer, h.head) for h in req.ablate])

    @app.post("/api/attention", response_model=schemas.AttentionResponse, responses=ERRORS)
    def api_attention(req: schemas.AttentionRequest) -> dict:
        """One head's attention pattern and thumbnails of every head of its layer."""
        return explorer.attention(
            req.text, req.layer, req.head, [(h.layer, h.head) for h in req.ablate]
        )

    @app.get("/api/heads", response_model=schemas.HeadsResponse)
    def api_heads() -> dict:
        """Head-role scores (grids n_layer × n_head) and roles, on the stories probe texts."""
        return explorer.heads()

    @app.get("/api/run", response_model=schemas.RunResponse, responses=ERRORS)
    def api_run() -> dict:
        """The training run's loss, perplexity, lr and per-layer curves from metrics.jsonl."""
        if run is None:
            raise NotFound("no training run attached; start the server with --run RUN")
        if not run.path.is_file():
            raise NotFound(f"{run.path} is gone")
        return run.curves()

    @app.get("/api/neurons", response_model=schemas.NeuronsResponse, responses=ERRORS)
    def api_neurons(layer: int = Query(ge=0, description="Layer index, from 0.")) -> dict:
        """Every MLP neuron of a layer over the stories probe texts (scanned once, on first
        call): top activation, mean, density, strongest token and word-category labels."""
        return explorer.neurons(layer)

    @app.get("/api/neuron", response_model=schemas.NeuronResponse, responses=ERRORS)
    def api_neuron(layer: int = Query(ge=0), neuron: int = Query(ge=0)) -> dict:
        """One neuron's top-activating contexts, activation histogram, and the tokens whose
        logits it raises and lowers most (W_out·W_U)."""
        return explorer.neuron(layer, neuron)

    @app.post("/api/token-neurons", response_model=schemas.TokenNeuronsResponse, responses=ERRORS)
    def api_token_neurons(req: schemas.TokenNeuronsRequest) -> dict:
        """The k most active MLP neurons, over every layer, at one token of the text."""
        return explorer.token_neurons(req.text, req.position, req.k)

    @app.get("/api/embeddings", response_model=schemas.EmbeddingsResponse, responses=ERRORS)
    def api_embeddings(
        space: schemas.Space = "tokens",
        layer: int = Query(0, ge=0, description="Residual layer: 0 = embedding, i = block i−1."),
        group: str = Query("part of speech", description="Category group the colours show."),
    ) -> dict:
        """A 2-D PCA of token embeddings, position embeddings, or the residual stream at the
        words of stories texts (read once, on first call), coloured by word category."""
        return explorer.embeddings(space, layer, group)

    @app.get("/api/timeline", response_model=schemas.TimelineResponse, responses=ERRORS)
    def api_timeline() -> dict:
        """The run's train and val loss, where the train loss's slope changes, and the steps
        of its kept checkpoints (404 without a run, or for a run without step checkpoints)."""
        with absent_as_404():
            return attached(timeline).overview()

    @app.get(
        "/api/timeline/checkpoint", response_model=schemas.CheckpointResponse, responses=ERRORS
    )
    def api_timeline_checkpoint(step: int = Query(ge=0)) -> dict:
        """One kept checkpoint measured (once, then cached): val loss, the sample, the best
        head of each role, cloze accuracy."""
        with absent_as_404():
            return attached(timeline).checkpoint(step)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return Guard(app, host)


ERRORS = {
    404: {"model": schemas.ErrorResponse},
    413: {"model": schemas.ErrorResponse},
    422: {"model": schemas.ErrorResponse},
}


class NotFound(GPT2LabError):
    """Something the request asks for does not exist here (404)."""


def attached(timeline: RunTimeline | None) -> RunTimeline:
    if timeline is None:
        raise NotFound("no training run attached; start the server with --run RUN")
    return timeline


@contextmanager
def absent_as_404() -> Iterator[None]:
    """A timeline's one-line errors (no checkpoints, no such step, no prepared data) are
    about things the run lacks: 404s, not bad requests."""
    try:
        yield
    except NotFound:
        raise
    except GPT2LabError as err:
        raise NotFound(str(err)) from None


def _run_metrics(run_dir: str | Path | None) -> RunMetrics | None:
    if run_dir is None:
        return None
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise GPT2LabError(f"{run_dir} has no metrics.jsonl; pass a training run directory")
    return RunMetrics(run_dir)


def _add_error_handlers(app) -> None:
    """Every error answers JSON {"detail": one line}: 413 too long, 404 missing, 422 invalid,
    500 for a bug (the server goes on)."""

    @app.exception_handler(GPT2LabError)
    async def user_error(request: Request, err: GPT2LabError) -> JSONResponse:
        status = 413 if isinstance(err, TooLong) else 404 if isinstance(err, NotFound) else 422
        return JSONResponse({"detail": str(err)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": validation_message(err.errors()), "errors": _jsonable(err.errors())},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def crash(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"internal error: {type(err).__name__}: {err}"}, status_code=500
        )


def validation_message(errors) -> str:
    """Pydantic's errors as one line: 'body → k: Input should be less than or equal to 20'."""
    first = errors[0]
    where = " → ".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _jsonable(errors) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in errors]


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one); a one-line error if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # with proto 0 every keep-alive request waited ~40 ms for Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise GPT2LabError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def exposure_warning(host: str) -> str | None:
    """The warning for a bind that other machines can reach (None for loopback)."""
    if is_loopback(host.strip("[]")):
        return None
    return (
        f"warning: listening on {host}: anyone who can reach this machine can use the explorer "
        "(it has no login); use --host 127.0.0.1 to keep it local"
    )


def serve(
    model,
    tokenizer,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    run_dir: str | Path | None = None,
    name: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Run the explorer until interrupted, printing its URL (and a warning if exposed)."""
    import uvicorn

    app = create_app(model, tokenizer, run_dir, host=host, name=name, limits=limits)
    sock = bind_socket(host, port)
    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    print(f"gpt2lab explorer: {url_of(host, sock.getsockname()[1])}  (Ctrl+C to stop)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
