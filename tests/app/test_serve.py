"""``gmmot serve``: the installed package serves the app as the quick start does."""

import os

import pytest

from gmmot import serve
from gmmot_runs.cli import main


def test_gmmot_serve_runs_panel_on_the_packaged_app(monkeypatch):
    ran = {}

    def execv(path, argv):  # the CLI replaces itself with panel serve
        ran["argv"] = argv
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(SystemExit):
        main(["serve", "--port", "5099", "--address", "0.0.0.0", "--origin", "gmmot.example:443"])
    argv = ran["argv"]
    assert argv[1:4] == ["-m", "panel", "serve"]
    app, setup = argv[4], argv[argv.index("--setup") + 1]
    # the package's own files, wherever it is installed: no checkout needed
    assert os.path.isfile(app) and app == str(serve.HERE / "main.py")
    assert os.path.isfile(setup) and setup == str(serve.HERE / "warmup.py")
    flags = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert flags["--port"] == "5099" and flags["--address"] == "0.0.0.0"
    origins = [argv[i + 1] for i, a in enumerate(argv) if a == "--allow-websocket-origin"]
    assert origins == ["localhost:5099", "127.0.0.1:5099", "gmmot.example:443"]
    assert "--websocket-max-message-size" in argv  # uploads travel in one message


def test_gmmot_serve_refuses_a_bad_port(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--port", "many"])
    assert exc.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err
