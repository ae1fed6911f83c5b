"""``gmmot`` command line: replay an exported parameter file headless.

``gmmot replay params.json --out results.json [--figure fig.png]`` runs the recorded frames
with the recorded settings and writes the same results the app exports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MAX_SPEC_BYTES = 200 * 2**20  # a spec with two inline clouds of 2e6 points stays below this


def _replay(args: argparse.Namespace) -> int:
    from gmmot_core.runs import RunSpec, SpecError, replay, results

    path = Path(args.params)
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"file is {size / 2**20:.0f} MiB, more than the 200 MiB limit")
        raw = path.read_bytes()
        if _kind(raw) == "descent":
            return _replay_descent(raw, path, args)
        if _kind(raw) == "barycenter":
            return _replay_barycenter(raw, path, args)
        if _kind(raw) == "w2_fit":
            return _replay_w2_fit(raw, path, args)
        spec = RunSpec.from_json(raw)
    except OSError as exc:
        sys.stderr.write(f"gmmot: error: cannot read {path}: {exc.strerror}\n")
        return 2
    except SpecError as exc:
        sys.stderr.write(f"gmmot: error: {path}: {exc}\n")
        return 2
    try:
        run = replay(spec)
    except ValueError as exc:  # e.g. inline clouds no mixture can be fitted to
        sys.stderr.write(f"gmmot: error: {path}: {exc}\n")
        return 2
    out = results(run.view)

    def figure(fmt: str) -> bytes:
        from gmmot_core.figure import coupled_em_figure

        return coupled_em_figure(out, run.points0, run.points1, fmt)

    return _write(args, out, figure, f"{out['iteration']} EM iterations")


def _write(args: argparse.Namespace, out: dict, figure, what: str) -> int:
    """Write the results (and the figure ``figure(fmt)`` if asked); report on stdout."""
    Path(args.out).write_text(json.dumps(out))
    if args.figure:
        fmt = Path(args.figure).suffix.lower().lstrip(".")
        if fmt not in ("png", "svg"):
            sys.stderr.write("gmmot: error: --figure must end in .png or .svg\n")
            return 2
        Path(args.figure).write_bytes(figure(fmt))
    msgs = f" ({'; '.join(out['status'])})" if out["status"] else ""
    sys.stdout.write(f"replayed {what} -> {args.out}{msgs}\n")
    return 0


def _kind(raw: bytes) -> str | None:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None  # RunSpec.from_json reports the parse error
    return obj.get("kind") if isinstance(obj, dict) else None


def _replay_run(path: Path, args: argparse.Namespace, play, results, figure, what) -> int:
    """``play()`` -> a run (errors name the field), then its ``results(run)`` and, if
    asked, ``figure(run, fmt)``; ``what(out)`` says what was replayed."""
    try:
        run = play()
    except (ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"gmmot: error: {path}: {exc}\n")
        return 2
    out = results(run)
    return _write(args, out, lambda fmt: figure(run, fmt), what(out))


def _replay_descent(raw: bytes, path: Path, args: argparse.Namespace) -> int:
    from gmmot_core.descent_run import DescentSpec, descent_results, replay_descent
    from gmmot_core.figure import descent_figure

    return _replay_run(
        path,
        args,
        lambda: replay_descent(DescentSpec.from_dict(json.loads(raw))),
        descent_results,
        lambda run, fmt: descent_figure(run.values, run.view, fmt),
        lambda out: f"{out['step']} descent steps",
    )


def _replay_barycenter(raw: bytes, path: Path, args: argparse.Namespace) -> int:
    from gmmot_core.barycenter_run import BarycenterSpec, barycenter_results, replay_barycenter
    from gmmot_core.figure import barycenter_figure

    return _replay_run(
        path,
        args,
        lambda: replay_barycenter(BarycenterSpec.from_dict(json.loads(raw))),
        barycenter_results,
        lambda run, fmt: barycenter_figure(run.view, fmt),
        lambda out: f"{out['iteration']} barycenter iterations",
    )


def _replay_w2_fit(raw: bytes, path: Path, args: argparse.Namespace) -> int:
    from gmmot_runs.figures import w2_fit_figure
    from gmmot_runs.w2_fit import W2FitSpec, replay, results

    return _replay_run(
        path,
        args,
        lambda: replay(W2FitSpec.from_json(raw)),
        results,
        lambda run, fmt: w2_fit_figure(run.view, fmt),
        lambda out: f"{out['step']} W2-fit steps",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gmmot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="replay an exported parameter file")
    rp.add_argument("params", help="parameter file downloaded from the app (JSON)")
    rp.add_argument("--out", required=True, help="where to write the results (JSON)")
    rp.add_argument("--figure", help="also write the figure (.png or .svg)")
    args = parser.parse_args(argv)
    return _replay(args)


if __name__ == "__main__":
    raise SystemExit(main())
