"""The ``difflens`` command line: ``tour``, ``run STUDY`` and ``list``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="difflens", description="difflens studies and reports")
    sub = p.add_subparsers(dest="command", required=True)

    tour = sub.add_parser("tour", help="run every study at quick settings into one report")
    tour.add_argument("--out", default="difflens-report", help="output folder (default: difflens-report)")
    tour.add_argument("--seed", type=int, default=0)
    tour.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    tour.add_argument("--only", nargs="*", help="run only these studies")
    tour.add_argument("--quiet", action="store_true", help="no progress output")
    tour.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")

    run = sub.add_parser("run", help="run one study")
    run.add_argument("study", help="study name (see `difflens list`)")
    run.add_argument("--out", default=None, help="output folder (default: difflens-report/STUDY)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="cpu")
    scale = run.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="quick settings (as in the tour)")
    scale.add_argument("--full", action="store_true", help="the seed document's full scale")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a study-specific option, e.g. --set data_root=~/mnist (repeatable)")

    sub.add_parser("list", help="list the studies")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from difflens.studies import get_study, list_studies, run_study, run_tour

    if args.command == "list":
        for s in list_studies():
            print(f"{s.name:12s} {s.title}")
        return 0
    try:
        options = _parse_options(getattr(args, "set", []))
        names = [args.study] if args.command == "run" else (args.only or [])
        for name in names:
            get_study(name)
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
    except (KeyError, ValueError) as exc:
        print(f"difflens: {exc.args[0]}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            out = Path(args.out or Path("difflens-report") / args.study)
            start = time.perf_counter()
            run_study(args.study, out, seed=args.seed, quick=args.quick, full=args.full,
                      device=args.device, verbose=not args.quiet, options=options)
            print(f"{args.study}: {time.perf_counter() - start:.1f} s -> {out / 'index.html'}")
            return 0
        entries = run_tour(args.out, seed=args.seed, device=args.device, verbose=not args.quiet,
                           only=args.only)
        for e in entries:
            print(f"{e['name']:12s} {'ok' if e['ok'] else 'FAILED: ' + e['error']:40s} {e['seconds']:7.1f} s")
        print(f"report: {Path(args.out) / 'index.html'}")
        return 0 if all(e["ok"] for e in entries) else 1
    except KeyboardInterrupt:
        print("difflens: interrupted; finished work and reports were kept", file=sys.stderr)
        return 130


def _parse_options(items: list[str]) -> dict[str, str]:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        options[key.strip()] = value
    return options


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
