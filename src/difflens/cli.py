"""The ``difflens`` command line: ``tour``, ``run STUDY``, ``sweep STUDY`` and ``list``.

Exit status: 0 done, 1 a study failed, 2 the command was misused (one line on
stderr says how), 130 interrupted (SIGINT or SIGTERM; finished work and a
report saying where it stopped are kept).
"""

from __future__ import annotations

import argparse
import os
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
    tour.add_argument("--resume", action="store_true", help="continue an interrupted tour in --out")
    tour.add_argument("--overwrite", action="store_true",
                      help="write into a non-empty folder difflens did not write (its files are never replaced)")
    tour.add_argument("--quiet", action="store_true", help="no progress output")
    tour.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")

    run = sub.add_parser("run", help="run one study", add_help=False,
                         description="Run one study. `difflens run STUDY --help` lists its settings.")
    run.add_argument("-h", "--help", action="store_true", help="show this help and the study's settings")
    run.add_argument("study", nargs="?", help="study name (see `difflens list`)")
    run.add_argument("--out", default=None, help="output folder (default: difflens-report/STUDY)")
    run.add_argument("--seed", type=int, default=None, help="base seed (default 0)")
    run.add_argument("--device", default="cpu")
    scale = run.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="quick settings (as in the tour)")
    scale.add_argument("--full", action="store_true", help="the seed document's full scale")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted run in --out with its recorded seed and settings")
    run.add_argument("--overwrite", action="store_true",
                     help="write into a non-empty folder difflens did not write (its files are never replaced)")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="change one setting (repeatable); `difflens run STUDY --help` lists them")

    sw = sub.add_parser("sweep", help="run one study over seeds and setting values, locally or on Ray",
                        description="Run STUDY at every seed and --grid value (one sub-folder per run under "
                                    "OUT/runs), then write OUT/index.html, summary.json and summary.csv. Running "
                                    "the same command again skips finished runs and resumes interrupted ones.")
    sw.add_argument("study", help="study name (see `difflens list`)")
    sw.add_argument("--seeds", default="0-9", help="seeds: a range 0-13 or a list 0,2,5 (default 0-9)")
    sw_scale = sw.add_mutually_exclusive_group()
    sw_scale.add_argument("--quick", action="store_true", help="quick settings (as in the tour)")
    sw_scale.add_argument("--full", action="store_true", help="the seed document's full scale")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="sweep a setting over these values (repeatable: the product is run)")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fix one setting (repeatable)")
    sw.add_argument("--out", required=True, help="the sweep's folder")
    sw.add_argument("--backend", default="local", help="local (a process pool here) or ray")
    sw.add_argument("--address", default=None, help="a running Ray cluster, HOST:PORT (default: start a local one)")
    sw.add_argument("--jobs", type=int, default=None, help="runs at once here (default: the CPU count)")
    sw.add_argument("--cpus-per-run", type=float, default=1, help="Ray CPUs asked per run (default 1)")
    sw.add_argument("--gpus-per-run", type=float, default=0, help="Ray GPUs asked per run (default 0)")
    sw.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    sw.add_argument("--retries", type=int, default=2, help="further attempts of a failed run (default 2)")
    sw.add_argument("--device", default="cpu")
    sw.add_argument("--quiet", action="store_true")

    sub.add_parser("list", help="list the studies")
    return p


def _fail(message: str) -> int:
    print(f"difflens: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run ``difflens`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Parameters
    ----------
    argv:
        The arguments after ``difflens``, e.g. ``["run", "gp", "--quick"]``.

    Returns
    -------
    int
        0 done, 1 a study failed, 2 the command was misused, 130 interrupted (see the module notes).

    Examples
    --------
    >>> from difflens.cli import main
    >>> main(["list"])  # doctest: +ELLIPSIS
    probe        Probing early-vision models: metamers and eigendistortions
    ...
    0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    from difflens.studies import get_study, list_studies, run_study, run_tour
    from difflens.studies.outdir import OutputFolderError
    from difflens.studies.runner import RunError, make_settings
    from difflens.studies.settings import SettingsError

    if args.command == "list":
        for s in list_studies():
            print(f"{s.name:12s} {s.title}")
        return 0
    if args.command == "run" and (args.help or args.study is None):
        parser._subparsers._group_actions[0].choices["run"].print_help()
        if args.study is None:
            return 0 if args.help else _fail("run needs a study name (see `difflens list`)")
        try:
            print("\n" + get_study(args.study).settings.describe())
        except KeyError as exc:
            return _fail(exc.args[0])
        return 0
    misuse = (KeyError, SettingsError, RunError, OutputFolderError)
    if args.command == "sweep":
        return _sweep(args, misuse)
    try:  # everything checked before any work: a one-line error, exit 2
        options = _parse_options(getattr(args, "set", []))
        names = [args.study] if args.command == "run" else (args.only or [])
        for name in names:
            get_study(name)
        if args.command == "run" and not args.resume:
            make_settings(get_study(args.study), _preset(args), options)
        if args.threads is not None:
            if args.threads < 1:
                raise RunError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        out = Path(args.out or Path("difflens-report") / args.study) if args.command == "run" else Path(args.out)
        _check_out(out)
    except misuse as exc:
        return _fail(exc.args[0] if exc.args else str(exc))
    try:
        if args.command == "run":
            start = time.perf_counter()
            run_study(args.study, out, seed=args.seed, preset=None if args.resume else _preset(args),
                      device=args.device, verbose=not args.quiet, options=options, resume=args.resume,
                      overwrite=args.overwrite)
            print(f"{args.study}: {time.perf_counter() - start:.1f} s -> {out / 'index.html'}")
            return 0
        entries = run_tour(out, seed=args.seed, device=args.device, verbose=not args.quiet,
                           only=args.only, overwrite=args.overwrite, resume=args.resume)
    except (SettingsError, RunError, OutputFolderError) as exc:  # the runner's checks (device, folder)
        return _fail(exc.args[0] if exc.args else str(exc))
    except KeyboardInterrupt:
        print("difflens: interrupted; finished work and a report saying where it stopped were kept",
              file=sys.stderr)
        return 130
    for e in entries:
        state = "ok" if e["status"] == "complete" else f"{e['status'].upper()}: {e['error']}"
        print(f"{e['name']:12s} {state:40s} {e['seconds']:7.1f} s")
    print(f"report: {Path(args.out) / 'index.html'}")
    return 0 if all(e["status"] == "complete" for e in entries) else 1


def _sweep(args, misuse) -> int:
    from difflens.studies.sweep import parse_grid, sweep

    try:
        options = _parse_options(args.set)
        grid = parse_grid(args.grid)
        if args.threads is not None and args.threads < 1:
            from difflens.studies.runner import RunError

            raise RunError(f"--threads must be >= 1, got {args.threads}")
        _check_out(Path(args.out))
        start = time.perf_counter()
        summary = sweep(args.study, args.out, args.seeds, preset=_preset(args), grid=grid, options=options,
                        backend=args.backend, jobs=args.jobs, address=args.address, cpus_per_run=args.cpus_per_run,
                        gpus_per_run=args.gpus_per_run, threads=args.threads, retries=args.retries,
                        device=args.device, verbose=not args.quiet)
    except misuse as exc:  # checked before any run starts
        return _fail(exc.args[0] if exc.args else str(exc))
    except KeyboardInterrupt:
        print("difflens: sweep interrupted; finished runs are kept and the same command resumes the rest",
              file=sys.stderr)
        return 130
    failed = [r for r in summary.runs if r["status"] != "complete"]
    for r in failed:
        print(f"{r['name']}: {r['status'].upper()}: {r['error']}", file=sys.stderr)
    print(f"sweep {args.study}: {len(summary.runs) - len(failed)}/{len(summary.runs)} runs complete, "
          f"{time.perf_counter() - start:.1f} s -> {Path(args.out) / 'index.html'}")
    return 1 if failed else 0


def _preset(args) -> str:
    return "quick" if args.quick else "full" if args.full else "default"


def _check_out(out: Path) -> None:
    from difflens.studies.runner import RunError

    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RunError(f"--out {out}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunError(f"--out {out}: {probe} is not writable")


def _parse_options(items: list[str]) -> dict[str, str]:
    from difflens.studies.settings import SettingsError

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"--set takes KEY=VALUE, got {item!r}")
        options[key.strip()] = value
    return options


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
