"""The web explorer: a local FastAPI app that shows what a GPT does with a text.

    from gpt2lab.viewer.server import create_app, serve
    serve(model, tokenizer, port=8000)        # or: gpt2lab serve --model gpt2

Modules: `api` (the model-side computations, serialised by one lock), `metrics` (reading a
training run's metrics.jsonl), `checkpoints` (a run's kept checkpoints, each measured with
`gpt2lab.timeline` when the page's step slider first reaches it), `schemas` (the JSON requests and responses), `server` (the
app, its safety guards, and `serve`), and `static/` (the page: HTML, JS, CSS; no CDN).
Nothing else in gpt2lab imports this package.
"""
