"""``gmmot`` command line: replay an exported parameter file headless, or serve the app.

``gmmot replay params.json --out results.json [--figure fig.png]`` runs the recorded frames
with the recorded settings and writes the same results the app exports.
``gmmot serve [--port N] [--address A]`` serves the app (:mod:`gmmot.serve`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gmmot_runs.run import Run, replay
from gmmot_runs.spec import SpecError

MAX_SPEC_BYTES = 200 * 2**20  # a spec with two inline clouds of 2e6 points stays below this


def replay_file(path: Path) -> Run:
    """Read, validate and replay one parameter file."""
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"file is {size / 2**20:.0f} MiB, more than the 200 MiB limit")
    return replay(path.read_bytes())


def _replay(args: argparse.Namespace) -> int:
    path = Path(args.params)
    try:
        run = replay_file(path)
    except OSError as exc:
        sys.stderr.write(f"gmmot: error: cannot read {path}: {exc.strerror}\n")
        return 2
    except ValueError as exc:  # SpecError, or e.g. inline clouds no mixture fits
        sys.stderr.write(f"gmmot: error: {path}: {exc}\n")
        return 2
    out = run.results()
    Path(args.out).write_text(json.dumps(out))
    if args.figure:
        fmt = Path(args.figure).suffix.lower().lstrip(".")
        if fmt not in ("png", "svg"):
            sys.stderr.write("gmmot: error: --figure must end in .png or .svg\n")
            return 2
        Path(args.figure).write_bytes(run.figure(fmt))
    msgs = f" ({'; '.join(out['status'])})" if out["status"] else ""
    sys.stdout.write(f"replayed {run.summary(out)} -> {args.out}{msgs}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gmmot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="replay an exported parameter file")
    rp.add_argument("params", help="parameter file downloaded from the app (JSON)")
    rp.add_argument("--out", required=True, help="where to write the results (JSON)")
    rp.add_argument("--figure", help="also write the figure (.png or .svg)")
    sv = sub.add_parser("serve", help="serve the app (open http://localhost:PORT/main)")
    from gmmot import serve  # argparse only: the app itself loads in panel serve

    serve.add_arguments(sv)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve.serve(args)
    return _replay(args)


if __name__ == "__main__":
    raise SystemExit(main())
