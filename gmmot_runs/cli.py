"""``gmmot`` command line: replay an exported parameter file headless.

``gmmot replay params.json --out results.json [--figure fig.png]`` runs the recorded frames
with the recorded settings and writes the same results the app exports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

from gmmot_runs.spec import SpecError, decode, kind_of

MAX_SPEC_BYTES = 200 * 2**20  # a spec with two inline clouds of 2e6 points stays below this


class Kind(NamedTuple):
    """How to replay one kind of parameter file: ``replay(obj) -> run`` (raises
    :class:`SpecError` naming the field), ``results(run) -> dict``, ``figure(run, fmt)
    -> bytes`` and ``what(results)``, the summary line."""

    replay: object
    results: object
    figure: object
    what: object


def _coupled_em() -> Kind:
    from gmmot_runs import coupled_em as run
    from gmmot_runs.figures import coupled_em_figure

    return Kind(
        lambda obj: run.replay(run.RunSpec.from_dict(obj)),
        lambda r: run.results(r.view),
        lambda r, fmt: coupled_em_figure(run.results(r.view), r.points0, r.points1, fmt),
        lambda out: f"{out['iteration']} EM iterations",
    )


def _descent() -> Kind:
    from gmmot_runs import descent as run
    from gmmot_runs.figures import descent_figure

    return Kind(
        lambda obj: run.replay_descent(run.DescentSpec.from_dict(obj)),
        run.descent_results,
        lambda r, fmt: descent_figure(r.values, r.view, fmt),
        lambda out: f"{out['step']} descent steps",
    )


def _barycenter() -> Kind:
    from gmmot_runs import barycenter as run
    from gmmot_runs.figures import barycenter_figure

    return Kind(
        lambda obj: run.replay_barycenter(run.BarycenterSpec.from_dict(obj)),
        run.barycenter_results,
        lambda r, fmt: barycenter_figure(r.view, fmt),
        lambda out: f"{out['iteration']} barycenter iterations",
    )


def _w2_fit() -> Kind:
    from gmmot_runs import w2_fit as run
    from gmmot_runs.figures import w2_fit_figure

    return Kind(
        lambda obj: run.replay(run.W2FitSpec.from_dict(obj)),
        run.results,
        lambda r, fmt: w2_fit_figure(r.view, fmt),
        lambda out: f"{out['step']} W2-fit steps",
    )


# imported on use: a replay loads only its own kind's solvers
KINDS = {"coupled_em": _coupled_em, "descent": _descent, "barycenter": _barycenter}
KINDS["w2_fit"] = _w2_fit


def replay_file(path: Path) -> tuple[Kind, object]:
    """Read, validate and replay one parameter file: ``(its kind, the run)``."""
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"file is {size / 2**20:.0f} MiB, more than the 200 MiB limit")
    obj = decode(path.read_bytes())
    kind = kind_of(obj)
    if kind not in KINDS:
        raise SpecError(f"field 'kind': {kind!r} is not one of {sorted(KINDS)}")
    handler = KINDS[kind]()
    return handler, handler.replay(obj)


def _replay(args: argparse.Namespace) -> int:
    path = Path(args.params)
    try:
        kind, run = replay_file(path)
    except OSError as exc:
        sys.stderr.write(f"gmmot: error: cannot read {path}: {exc.strerror}\n")
        return 2
    except ValueError as exc:  # SpecError, or e.g. inline clouds no mixture fits
        sys.stderr.write(f"gmmot: error: {path}: {exc}\n")
        return 2
    out = kind.results(run)
    Path(args.out).write_text(json.dumps(out))
    if args.figure:
        fmt = Path(args.figure).suffix.lower().lstrip(".")
        if fmt not in ("png", "svg"):
            sys.stderr.write("gmmot: error: --figure must end in .png or .svg\n")
            return 2
        Path(args.figure).write_bytes(kind.figure(run, fmt))
    msgs = f" ({'; '.join(out['status'])})" if out["status"] else ""
    sys.stdout.write(f"replayed {kind.what(out)} -> {args.out}{msgs}\n")
    return 0


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
