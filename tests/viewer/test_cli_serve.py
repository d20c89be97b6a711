"""`gpt2lab serve`: help, one-line errors (exit 2), the exposure warning, run detection.

uvicorn's Server.run is replaced by a recorder, so no test blocks on a real server here
(the browser tests run a real one)."""

from __future__ import annotations

import uvicorn
from fastapi.testclient import TestClient

from gpt2lab.cli import main
from gpt2lab.pretrained import save_pretrained
from gpt2lab.viewer.server import bind_socket, exposure_warning

from .conftest import write_metrics


def saved_run(model, root):
    """runs/NAME with checkpoints/best (the tiny model, GPT-2's vocabulary) and metrics."""
    run = root / "runs" / "tiny"
    save_pretrained(model, run / "checkpoints" / "best")
    write_metrics(run)
    return run


def record_server(monkeypatch) -> list:
    """Make uvicorn.Server.run return at once; collect (app, port) of each would-be server."""
    started = []

    def run(self, sockets=None):
        started.append((self.config.app, sockets[0].getsockname()[1]))
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return started


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpt2lab serve: error: ") and "\n" not in err, err
    return err


def test_help_names_every_option(capsys):
    try:
        main(["serve", "--help"])
    except SystemExit as done:
        assert done.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--run", "--port", "--host", "--max-tokens", "/docs", "127.0.0.1"):
        assert option in out


def test_missing_model_is_one_line(capsys, tmp_path):
    assert main(["serve", "--model", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "nope" in one_line_error(capsys)


def test_bad_port_and_caps_are_one_line(capsys, model, tmp_path):
    run = saved_run(model, tmp_path)
    assert main(["serve", "--model", str(run), "--port", "70000"]) == 2
    assert "70000" in one_line_error(capsys)
    assert main(["serve", "--model", str(run), "--max-tokens", "0"]) == 2
    assert "--max-tokens" in one_line_error(capsys)


def test_port_in_use_is_one_line(capsys, model, tmp_path, monkeypatch):
    record_server(monkeypatch)
    run = saved_run(model, tmp_path)
    busy = bind_socket("127.0.0.1", 0)
    try:
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(run), "--port", str(port)]) == 2
        assert f"127.0.0.1:{port}" in one_line_error(capsys)
    finally:
        busy.close()


def test_serve_prints_url_and_attaches_the_run(capsys, model, tmp_path, monkeypatch):
    started = record_server(monkeypatch)
    run = saved_run(model, tmp_path)
    assert main(["serve", "--model", str(run), "--port", "0"]) == 0
    captured = capsys.readouterr()
    app, port = started[0]
    assert f"http://127.0.0.1:{port}/" in captured.out
    assert "warning" not in captured.err
    client = TestClient(app, base_url=f"http://127.0.0.1:{port}")
    assert client.get("/api/info").json()["has_run"] is True
    assert client.get("/api/run").json()["name"] == "tiny"


def test_binding_every_interface_warns(capsys, model, tmp_path, monkeypatch):
    started = record_server(monkeypatch)
    run = saved_run(model, tmp_path)
    assert main(["serve", "--model", str(run), "--host", "0.0.0.0", "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err
    app, port = started[0]
    assert TestClient(app, base_url="http://evil.example").get("/").status_code == 400
    assert TestClient(app, base_url=f"http://10.1.2.3:{port}").get("/").status_code == 200


def test_exposure_warning_only_off_loopback():
    assert exposure_warning("127.0.0.1") is None
    assert exposure_warning("localhost") is None
    assert exposure_warning("::1") is None
    assert "0.0.0.0" in exposure_warning("0.0.0.0")
    assert exposure_warning("192.168.1.20") is not None
