"""Sweeps: one study over seeds and setting values, on this machine or on a Ray cluster.

:func:`sweep` runs the product of ``seeds`` and the ``grid`` values as
independent study runs, each in its own sub-folder ``OUT/runs/NAME`` written
exactly as ``difflens run`` writes it, then aggregates them into
``OUT/summary.json``, ``OUT/summary.csv`` and ``OUT/index.html`` (mean,
standard deviation, 95% confidence interval, min and max over seeds of every
numeric metric, for each grid value, with strip plots).

- ``backend="local"``: a process pool on this machine, one torch thread per run.
- ``backend="ray"``: one Ray task per run on a local cluster, or on the cluster
  at ``address``, asking ``cpus_per_run`` / ``gpus_per_run`` per task.

Faults: a run whose ``metrics.json`` says ``"status": "complete"`` (for the same
study, seed and settings) is never run again; an interrupted or killed run is
resumed from its checkpoints (``run_study(..., resume=True)``); a failing run is
retried ``retries`` times, then reported as failed with its error while the
others go on. ``OUT`` keeps its own manifest and a ``sweep.json`` describing the
sweep; an ``OUT`` holding another sweep (another study, preset, settings or
grid) is refused.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outdir import OutputFolder
from .registry import get_study
from .runner import RunError, make_settings
from .settings import PRESET_NAMES, SettingsError

__all__ = [
    "BACKENDS",
    "SweepError",
    "SweepRun",
    "SweepSummary",
    "aggregate",
    "execute_run",
    "parse_grid",
    "parse_seeds",
    "sweep",
]

BACKENDS = ("local", "ray")
SPEC_FILE = "sweep.json"
RAY_HINT = "--backend ray needs Ray: pip install 'difflens[ray]' (or pip install ray)"


class SweepError(RunError):
    """A sweep cannot start as asked (bad seeds, grid, backend, folder, address); the message says why."""


# -- the run grid ------------------------------------------------------------------------------------

def parse_seeds(seeds: str | int | Iterable[int]) -> list[int]:
    """Seeds from ``"0-13"``, ``"0,2,5"``, ``"0-3,8"``, an int or an iterable of ints >= 0 (order kept, no repeats)."""
    if isinstance(seeds, bool):
        raise SweepError(f"--seeds must be integers >= 0, got {seeds!r}")
    if isinstance(seeds, int):
        items: list[int] = [seeds]
    elif isinstance(seeds, str):
        items = []
        for part in filter(None, (p.strip() for p in seeds.split(","))):
            lo, sep, hi = part.partition("-")
            try:
                items += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
            except ValueError:
                raise SweepError(f"--seeds takes a range like 0-13 or a list like 0,2,5; got {seeds!r}") from None
            if sep and int(hi) < int(lo):
                raise SweepError(f"--seeds range {part!r} is empty (end before start)")
    else:
        items = list(seeds)
    for s in items:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise SweepError(f"--seeds must be integers >= 0, got {s!r}")
    if not items:
        raise SweepError("--seeds names no seed")
    return list(dict.fromkeys(items))


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["KEY=V1,V2", ...]`` as ``{KEY: ["V1", "V2"]}``; a malformed item raises :class:`SweepError`."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise SweepError(f"--grid takes KEY=V1,V2,...; got {item!r}")
        if key in grid:
            raise SweepError(f"--grid names {key!r} twice")
        grid[key] = [v.strip() for v in values.split(",")]
    return grid


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its seed, its grid values (as given) and its folder name under ``runs/``."""

    seed: int
    values: tuple[tuple[str, Any], ...]
    settings: tuple[tuple[str, Any], ...]

    @property
    def group(self) -> str:
        """The grid values as ``key=value,key=value`` (``"all"`` without a grid)."""
        return ",".join(f"{k}={v}" for k, v in self.values) or "all"

    @property
    def name(self) -> str:
        parts = [f"{k}-{v}" for k, v in self.values] + [f"seed-{self.seed}"]
        return "_".join("".join(c if c.isalnum() or c in "-." else "_" for c in p) for p in parts)


def _plan(study: str, seeds, preset, grid, options, settings) -> tuple[list[SweepRun], dict]:
    entry = get_study(study)  # KeyError naming the known studies
    if preset is not None and preset not in PRESET_NAMES:
        raise SweepError(f"preset must be one of {', '.join(PRESET_NAMES)}, got {preset!r}")
    preset = preset or "default"
    seeds = parse_seeds(seeds)
    grid = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in (grid or {}).items()}
    names = entry.settings.names()
    for key, values in grid.items():
        if key == "seed":
            raise SweepError("--grid seed=...: give seeds with --seeds")
        if key not in names:
            raise SweepError(f"--grid {key}: {study} has no setting {key!r}; valid keys: {', '.join(names)}")
        if not values:
            raise SweepError(f"--grid {key}: no values")
        if key in (options or {}) or key in (settings or {}):
            raise SweepError(f"{key!r} is both swept (--grid) and fixed (--set)")
    options = {k: str(v) for k, v in (options or {}).items()}
    runs, groups = [], []
    for combo in itertools.product(*[[(k, v) for v in vs] for k, vs in grid.items()]):
        strings = {k: v for k, v in combo if isinstance(v, str)}
        typed = {**(settings or {}), **{k: v for k, v in combo if not isinstance(v, str)}}
        try:
            chosen = make_settings(entry, preset, {**options, **strings}, typed or None)
        except SettingsError as exc:
            bad = [k for k, _ in combo]
            raise SweepError(f"--grid {'/'.join(bad)}: {exc.args[0]}" if bad else exc.args[0]) from None
        groups.append(combo)
        resolved = tuple(sorted(chosen.to_dict().items()))
        runs += [SweepRun(s, tuple(combo), resolved) for s in seeds]
    spec = {"study": study, "preset": preset, "options": options,
            "settings": {k: v for k, v in (settings or {}).items()},
            "grid": {k: [v for v in vs] for k, vs in grid.items()}, "seeds": seeds}
    return runs, spec


def _open_folder(out: Path, spec: dict) -> OutputFolder:
    """The sweep's own folder; refuses one that holds another sweep (seeds may differ)."""
    from .outdir import MANIFEST

    known = (out / MANIFEST).is_file()
    old_spec = out / SPEC_FILE
    if known and old_spec.is_file():
        try:
            old = json.loads(old_spec.read_text(encoding="utf-8"))
        except ValueError:
            raise SweepError(f"--out {out}: {SPEC_FILE} is unreadable; choose another --out") from None
        same = {k: v for k, v in old.items() if k != "seeds"} == {k: v for k, v in spec.items() if k != "seeds"}
        if not same:
            raise SweepError(f"--out {out} holds another sweep ({old.get('study')}, preset {old.get('preset')}, "
                             f"grid {old.get('grid')}, set {old.get('options')}); choose another --out")
    elif known and (out / "metrics.json").is_file():
        raise SweepError(f"--out {out} holds a single study run, not a sweep; choose another --out")
    folder = OutputFolder(out, resume=known)
    folder.path_for("runs/")
    folder.write_text(SPEC_FILE, json.dumps(spec, indent=1, sort_keys=True))
    return folder


def _read_metrics(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, study: str, run: SweepRun) -> bool:
    """Whether ``folder/metrics.json`` records a complete run of ``study`` at ``run``'s seed and settings."""
    m = _read_metrics(Path(folder) / "metrics.json")
    if not m or m.get("status") != "complete":
        return False
    r = m.get("run", {})
    return r.get("study") == study and r.get("seed") == run.seed and r.get("settings") == dict(run.settings)


# -- one run (in a worker process) ---------------------------------------------------------------------

def execute_run(task: dict) -> dict:
    """Run one sweep task in this process: skip it when complete, resume it when interrupted, else start it.

    ``task`` holds ``study, out, seed, preset, settings`` (a full settings dict), ``device``,
    ``threads``, ``imports`` (modules registering extra studies) and ``sys_path``. Returns
    ``{"status", "error", "resumed", "seconds"}``; never raises for a failing study.
    """
    for p in task.get("sys_path", ()):
        if p not in sys.path:
            sys.path.insert(0, p)
    import importlib

    import torch

    from .runner import run_study

    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
        # NumPy's BLAS and OpenMP (scikit-learn's k-means) start one thread per core in each worker
        # unless told: a pool of one run per core then oversubscribes (measured: a quick draw run
        # 33-50 s instead of 21-26 s on 2 cores). Ray's workers are limited this way already.
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(task["threads"]))
    for mod in task.get("imports", ()):
        importlib.import_module(mod)
    out = Path(task["out"])
    start = time.perf_counter()
    previous = _read_metrics(out / "metrics.json")
    if previous and previous.get("status") == "complete" and previous.get("run", {}).get("settings") == \
            task["settings"] and previous.get("run", {}).get("seed") == task["seed"]:
        return {"status": "complete", "error": "", "resumed": False, "skipped": True, "seconds": 0.0}
    resume = bool(previous and previous.get("run", {}).get("settings") == task["settings"]
                  and previous.get("run", {}).get("seed") == task["seed"]
                  and previous.get("run", {}).get("study") == task["study"])
    try:
        if resume:
            run_study(task["study"], out, device=task.get("device", "cpu"), verbose=False, resume=True)
        else:
            run_study(task["study"], out, seed=task["seed"], preset=task["preset"],
                      device=task.get("device", "cpu"), verbose=False, settings=task["settings"])
    except KeyboardInterrupt:
        return {"status": "interrupted", "error": "interrupted", "resumed": resume, "skipped": False,
                "seconds": time.perf_counter() - start}
    except Exception as exc:  # noqa: BLE001  (reported by the driver; the other runs go on)
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "resumed": resume, "skipped": False,
                "seconds": time.perf_counter() - start}
    return {"status": "complete", "error": "", "resumed": resume, "skipped": False,
            "seconds": time.perf_counter() - start}


def _init_worker() -> None:  # local pool: a worker leaves SIGINT to the driver, which stops it with SIGTERM
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- backends --------------------------------------------------------------------------------------

class _LocalBackend:
    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool = None

    def _ensure(self):
        import concurrent.futures as cf
        import multiprocessing as mp

        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("spawn"),
                                                initializer=_init_worker)
        return self._pool

    def submit(self, task: dict):
        return self._ensure().submit(execute_run, task)

    def wait(self, handles: list, timeout: float):
        import concurrent.futures as cf

        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        for h in done:
            try:
                out.append((h, h.result()))
            except Exception as exc:  # noqa: BLE001  (a killed worker: BrokenProcessPool for every run in flight)
                out.append((h, {"status": "lost", "error": f"worker lost: {type(exc).__name__}: {exc}"}))
                self._pool = None  # a broken pool cannot take new work; the next submit makes a new one
        return out

    def stop(self, interrupted: bool) -> None:
        if self._pool is None:
            return
        if interrupted:
            import signal

            for proc in list(getattr(self._pool, "_processes", {}).values()):
                try:
                    os.kill(proc.pid, signal.SIGTERM)  # the study records "interrupted" and its checkpoint
                except (OSError, AttributeError):
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


def check_address(address: str, timeout: float = 3.0) -> None:
    """Refuse within ``timeout`` seconds a Ray ``address`` (``host:port``, ``ray://host:port``) nobody answers at."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise SweepError(f"--address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise SweepError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                         "start one with `ray start --head` or check the address") from None


def _connect(ray, address: str, wait_s: int = 5) -> None:
    """``ray.init(address=...)``, giving up after about ``wait_s`` seconds with a one-line :class:`SweepError`."""
    saved = {k: os.environ.get(k) for k in ("RAY_gcs_server_port_wait_time_s", "RAY_BACKEND_LOG_LEVEL")}
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(wait_s))
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="error")
    except (ConnectionError, RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(f"--address {address}: cannot join a Ray cluster there ({first[:160]})") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _RayBackend:
    def __init__(self, jobs: int | None, address: str | None, cpus: float, gpus: float) -> None:
        try:
            import ray
        except ImportError:
            raise SweepError(RAY_HINT) from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            if address:
                check_address(address)
                _connect(ray, address)
            else:
                try:
                    ray.init(num_cpus=jobs or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                             _node_ip_address="127.0.0.1")  # a local cluster listens on loopback only
                except Exception as exc:  # noqa: BLE001  (Ray raises a bare Exception on a startup timeout)
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise SweepError(f"--backend ray: could not start a local Ray cluster ({first[:160]})") from None
            self.started = True
        self.remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(execute_run)
        # runs the cluster can hold at once (so "running" means running); at least one
        have = ray.cluster_resources()
        fits = [have.get("CPU", 0) / cpus if cpus else math.inf, have.get("GPU", 0) / gpus if gpus else math.inf]
        if min(fits) < 1:
            if self.started:
                ray.shutdown()
            raise SweepError(f"--cpus-per-run {cpus:g} --gpus-per-run {gpus:g}: the Ray cluster has "
                             f"{have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs; no run would start")
        self.capacity = int(min(fits)) if math.isfinite(min(fits)) else 1 << 30

    def submit(self, task: dict):
        return self.remote.remote(task)

    def wait(self, handles: list, timeout: float):
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        out = []
        for h in ready:
            try:
                out.append((h, self.ray.get(h)))
            except Exception as exc:  # noqa: BLE001  (a worker died: WorkerCrashedError, ...; or cancelled)
                out.append((h, {"status": "lost", "error": f"worker lost: {type(exc).__name__}: {exc}"}))
        return out

    def stop(self, interrupted: bool, handles: Sequence = ()) -> None:
        if interrupted:
            for h in handles:
                with contextlib.suppress(Exception):  # already finished
                    self.ray.cancel(h)
        if self.started:
            self.ray.shutdown()


# -- the driver --------------------------------------------------------------------------------------

@dataclass
class SweepSummary:
    """What a sweep returns: its runs, the aggregate table and (with two grid values) a comparison.

    Attributes
    ----------
    runs : list of dict
        One per run: ``name, seed, group, status`` (complete / failed / interrupted / pending),
        ``attempts, error, seconds``.
    rows : list of dict
        One per (grid value, metric): ``group, metric, n, mean, std, ci_low, ci_high, min, max``.
    comparison : list of dict
        With exactly two grid values: ``metric, difference`` (second minus first), ``ci_low, ci_high,
        paired``.
    out : Path
        The sweep folder.
    """

    runs: list[dict]
    rows: list[dict]
    comparison: list[dict] = field(default_factory=list)
    out: Path | None = None
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return all(r["status"] == "complete" for r in self.runs)

    def to_pandas(self):
        """The aggregate table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def table(self, metric: str) -> dict[str, dict]:
        """``{group: row}`` for one metric."""
        return {r["group"]: r for r in self.rows if r["metric"] == metric}


def sweep(study: str, out: str | os.PathLike, seeds: str | int | Iterable[int] = "0-9", *,
          preset: str | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
          options: Mapping[str, str] | None = None, settings: Mapping[str, Any] | None = None,
          backend: str = "local", jobs: int | None = None, address: str | None = None,
          cpus_per_run: float = 1, gpus_per_run: float = 0, threads: int | None = 1, retries: int = 2,
          device: str = "cpu", imports: Sequence[str] = (), verbose: bool = True) -> SweepSummary:
    """Run ``study`` at every seed and grid value into ``out/runs/NAME`` and aggregate the results.

    Parameters
    ----------
    study : str
        A registered study.
    out : path-like
        The sweep folder (its own manifest and ``sweep.json``; re-running the same sweep there
        skips finished runs and resumes interrupted ones).
    seeds : str, int or iterable of int
        ``"0-13"``, ``"0,3,7"`` or a list. Default ``"0-9"``.
    preset : str, optional
        ``"quick"``, ``"default"`` (default) or ``"full"``.
    grid : mapping of setting name to values, optional
        Each value list is swept (strings are parsed as ``--set`` values, others taken as typed).
    options, settings : mapping, optional
        Fixed settings: ``--set`` strings, or typed values.
    backend : {"local", "ray"}
        A process pool here, or Ray tasks.
    jobs : int, optional
        Runs at once (local: pool size, default the CPU count; ray: CPUs of a local cluster it starts).
    address : str, optional
        A running Ray cluster (``HOST:PORT`` or ``ray://HOST:10001``); refused in seconds when unreachable.
    cpus_per_run, gpus_per_run : float
        Ray resources asked per run.
    threads : int or None
        torch threads per run (default 1; ``None``: torch's choice).
    retries : int
        Further attempts of a failed or lost run before it is reported as failed.
    device : str
        The studies' torch device.
    imports : sequence of str
        Modules each worker imports first (ones that register extra studies).
    verbose : bool
        Progress lines on stderr: done, running, failed, elapsed and estimated time.

    Returns
    -------
    SweepSummary

    Raises
    ------
    KeyError, SweepError, SettingsError, OutputFolderError
        Before any run starts (unknown study, grid key, bad value, another sweep in ``out``,
        unreachable address, Ray missing).
    KeyboardInterrupt
        After an interrupt: the runs in flight are stopped with their checkpoints, the summary
        of what finished is written.
    """
    if backend not in BACKENDS:
        raise SweepError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SweepError(f"retries must be an integer >= 0, got {retries!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise SweepError(f"--jobs must be an integer >= 1, got {jobs!r}")
    for name, v in (("--cpus-per-run", cpus_per_run), ("--gpus-per-run", gpus_per_run)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise SweepError(f"{name} must be a number >= 0, got {v!r}")
    if address and backend != "ray":
        raise SweepError("--address is for --backend ray")
    for mod in imports:
        __import__(mod)
    runs, spec = _plan(study, seeds, preset, grid, options, settings)
    home = get_study(study).run.__module__  # a study registered outside difflens: its module, in every worker
    imports = list(dict.fromkeys([*imports, *([] if home.startswith("difflens.") else [home])]))
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SweepError(RAY_HINT) from None
        if address:
            check_address(address)
    out = Path(out)
    engine = (_LocalBackend(jobs or os.cpu_count() or 1) if backend == "local"
              else _RayBackend(jobs, address, cpus_per_run, gpus_per_run))  # joins the cluster before any write
    try:
        folder = _open_folder(out, spec)
    except BaseException:
        engine.stop(False)
        raise
    start = time.perf_counter()
    state = {r.name: {"name": r.name, "seed": r.seed, "group": r.group, "status": "pending", "attempts": 0,
                      "error": "", "seconds": 0.0} for r in runs}
    todo = []
    for r in runs:
        if is_complete(out / "runs" / r.name, study, r):
            state[r.name]["status"] = "complete"
            state[r.name]["skipped"] = True
        else:
            todo.append(r)
    by_name = {r.name: r for r in runs}

    def task(r: SweepRun) -> dict:
        return {"study": study, "out": str((out / "runs" / r.name).resolve()), "seed": r.seed,
                "preset": spec["preset"], "settings": dict(r.settings), "device": device, "threads": threads,
                "imports": list(imports), "sys_path": [p for p in sys.path if p and os.path.isdir(p)][:20]}

    def report(final: bool = False) -> SweepSummary:
        summary = aggregate(out, [state[r.name] for r in runs], study, seconds=time.perf_counter() - start)
        write_summary(folder, summary, spec, final=final)
        return summary

    in_flight: dict[Any, str] = {}
    queue = list(todo)
    limit = jobs or (os.cpu_count() or 1) if backend == "local" else engine.capacity
    interrupted = False
    try:
        report()
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                r = queue.pop(0)
                state[r.name].update(status="running", attempts=state[r.name]["attempts"] + 1)
                in_flight[engine.submit(task(r))] = r.name
            for handle, result in engine.wait(list(in_flight), timeout=1.0):
                name = in_flight.pop(handle)
                s = state[name]
                s["seconds"] += float(result.get("seconds", 0.0))
                if result["status"] == "complete":
                    s.update(status="complete", error="")
                elif s["attempts"] <= retries:
                    s.update(status="pending", error=result["error"])
                    queue.append(by_name[name])  # retried: resumes from its checkpoints
                else:
                    s.update(status="failed", error=result["error"])
                if verbose:
                    _progress(state, start)
                report()
    except KeyboardInterrupt:
        interrupted = True
        for name in in_flight.values():
            state[name].update(status="interrupted", error="interrupted")
        raise
    finally:
        if backend == "ray":
            engine.stop(interrupted, list(in_flight))
        else:
            engine.stop(interrupted)
        summary = report(final=True)
    return summary


def _progress(state: dict, start: float) -> None:
    counts = {k: sum(s["status"] == k for s in state.values()) for k in ("complete", "running", "failed", "pending")}
    elapsed = time.perf_counter() - start
    ran = [s for s in state.values() if s["status"] == "complete" and not s.get("skipped")]
    left = counts["running"] + counts["pending"]
    eta = ""
    if ran and left:
        per = elapsed / len(ran)
        eta = f", about {per * left:.0f} s left"
    print(f"sweep: {counts['complete']}/{len(state)} done, {counts['running']} running, {counts['failed']} failed, "
          f"{elapsed:.0f} s elapsed{eta}", file=sys.stderr, flush=True)


# -- aggregation --------------------------------------------------------------------------------------

def _t95(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def _numbers(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if k in ("status", "run") or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = float(v)
    return out


def _stats(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    half = _t95(n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
            "min": min(values), "max": max(values)}


def aggregate(out: str | os.PathLike, runs: list[dict], study: str = "", seconds: float = 0.0) -> SweepSummary:
    """Aggregate the complete runs' ``metrics.json`` under ``out/runs``: one row per grid value and metric."""
    out = Path(out)
    values: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in runs:
        if r["status"] != "complete":
            continue
        m = _read_metrics(out / "runs" / r["name"] / "metrics.json") or {}
        for k, v in _numbers(m).items():
            values.setdefault(r["group"], {}).setdefault(k, []).append((r["seed"], v))
    rows = []
    for group in dict.fromkeys(r["group"] for r in runs):
        for metric, pairs in sorted(values.get(group, {}).items()):
            rows.append({"group": group, "metric": metric, **_stats([v for _, v in pairs]),
                         "values": [v for _, v in sorted(pairs)], "seeds": [s for s, _ in sorted(pairs)]})
    groups = list(dict.fromkeys(r["group"] for r in runs))
    comparison = []
    if len(groups) == 2:
        a, b = values.get(groups[0], {}), values.get(groups[1], {})
        for metric in sorted(set(a) & set(b)):
            comparison.append({"metric": metric, "first": groups[0], "second": groups[1],
                               **_difference(dict(a[metric]), dict(b[metric]))})
    return SweepSummary(runs=runs, rows=rows, comparison=comparison, out=out, seconds=seconds)


def _difference(a: dict[int, float], b: dict[int, float]) -> dict:
    """Mean of ``b`` minus mean of ``a`` with a 95% interval: paired over common seeds, else Welch's."""
    common = sorted(set(a) & set(b))
    if len(common) >= 2 and len(common) == len(a) == len(b):
        d = [b[s] - a[s] for s in common]
        st = _stats(d)
        return {"difference": st["mean"], "ci_low": st["ci_low"], "ci_high": st["ci_high"], "paired": True}
    va, vb = list(a.values()), list(b.values())
    diff = sum(vb) / len(vb) - sum(va) / len(va)
    if len(va) < 2 or len(vb) < 2:
        return {"difference": diff, "ci_low": float("nan"), "ci_high": float("nan"), "paired": False}
    sa, sb = _stats(va)["std"] ** 2 / len(va), _stats(vb)["std"] ** 2 / len(vb)
    se = math.sqrt(sa + sb)
    dof = (sa + sb) ** 2 / ((sa ** 2 / (len(va) - 1)) + (sb ** 2 / (len(vb) - 1))) if se > 0 else len(va) + len(vb) - 2
    half = _t95(max(1, int(dof))) * se
    return {"difference": diff, "ci_low": diff - half, "ci_high": diff + half, "paired": False}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def write_summary(folder: OutputFolder, summary: SweepSummary, spec: dict, final: bool = False) -> None:
    """``summary.json``, ``summary.csv`` and ``index.html`` (with strip plots once the sweep ends)."""
    counts = {k: sum(r["status"] == k for r in summary.runs)
              for k in ("complete", "running", "failed", "pending", "interrupted")}
    payload = {"sweep": spec, "progress": {**counts, "total": len(summary.runs), "seconds": summary.seconds},
               "runs": summary.runs, "rows": summary.rows, "comparison": summary.comparison}
    folder.write_text("summary.json", json.dumps(_clean(payload), indent=1, sort_keys=True))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["group", "metric", "n", "mean", "std", "ci_low", "ci_high", "min", "max"])
    for r in summary.rows:
        w.writerow([r["group"], r["metric"], r["n"]] + [repr(r[k]) for k in
                                                          ("mean", "std", "ci_low", "ci_high", "min", "max")])
    folder.write_text("summary.csv", buf.getvalue())
    figures = []
    if final and summary.rows:
        figures = _strip_plots(folder, summary, spec)
    folder.write_text("index.html", sweep_page(spec, payload["progress"], summary, figures))


def _strip_plots(folder: OutputFolder, summary: SweepSummary, spec: dict) -> list[str]:
    from difflens.plot.sweep import strip_plot

    entry = get_study(spec["study"])
    headline = [k for k, _ in entry.headline]
    metrics = list(dict.fromkeys(r["metric"] for r in summary.rows))
    chosen = [m for m in headline if m in metrics] or [m for m in metrics if "seconds" not in m][:6]
    names = []
    for m in chosen:
        import matplotlib.pyplot as plt

        fig = strip_plot({g: r["values"] for g, r in summary.table(m).items()}, title=m)
        name = f"strip_{''.join(c if c.isalnum() or c in '-_.' else '_' for c in m)}.png"
        folder.write(name, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
        plt.close(fig)
        names.append(name)
    return names


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"


def sweep_page(spec: dict, progress: dict, summary: SweepSummary, figures: Sequence[str]) -> str:
    """The sweep's ``index.html``: progress, the comparison line, the table, strip plots, the runs."""
    from html import escape

    entry = get_study(spec["study"])
    head = [k for k, _ in entry.headline]
    grid = ", ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in spec["grid"].items()) or "none"
    parts = [f"<!doctype html><meta charset='utf-8'><title>sweep: {escape(spec['study'])}</title>",
             ("<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}td,th{padding:2px 8px;"
             "text-align:right}table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style>"),
             f"<h1>Sweep of <code>{escape(spec['study'])}</code>: {escape(entry.title)}</h1>",
             (f"<p>Preset {escape(spec['preset'])}; seeds {escape(str(spec['seeds']))}; grid {escape(grid)}; "
             f"fixed settings {escape(str(spec['options'] or spec['settings'] or 'none'))}.</p>"),
             (f"<p><b>Progress:</b> {progress['complete']}/{progress['total']} complete, {progress['running']} "
             f"running, {progress['failed']} failed, {progress['interrupted']} interrupted; "
             f"{progress['seconds']:.0f} s.</p>")]
    for c in summary.comparison:
        if c["metric"] in head:
            parts.append(f"<p>{escape(c['metric'])}: {escape(c['second'])} − {escape(c['first'])} = "
                         f"{_fmt(c['difference'])} (95% CI {_fmt(c['ci_low'])} to {_fmt(c['ci_high'])}, "
                         f"{'paired over seeds' if c['paired'] else 'Welch'})</p>")
    parts.append("<h2>Metrics over seeds</h2><table><tr><th>group</th><th>metric</th><th>n</th><th>mean</th>"
                 "<th>std</th><th>95% CI</th><th>min</th><th>max</th></tr>")
    rows = sorted(summary.rows, key=lambda r: (r["metric"] not in head, r["metric"], r["group"]))
    for r in rows:
        parts.append(f"<tr><td>{escape(r['group'])}</td><td style='text-align:left'>{escape(r['metric'])}</td>"
                     f"<td>{r['n']}</td><td>{_fmt(r['mean'])}</td><td>{_fmt(r['std'])}</td>"
                     f"<td>{_fmt(r['ci_low'])} – {_fmt(r['ci_high'])}</td><td>{_fmt(r['min'])}</td>"
                     f"<td>{_fmt(r['max'])}</td></tr>")
    parts.append("</table>")
    for f in figures:
        parts.append(f"<figure><img src='{escape(f)}' style='max-width:45em'></figure>")
    parts.append("<h2>Runs</h2><table><tr><th>run</th><th>status</th><th>attempts</th><th>seconds</th>"
                 "<th>error</th></tr>")
    for r in summary.runs:
        link = f"<a href='runs/{escape(r['name'])}/index.html'>{escape(r['name'])}</a>"
        parts.append(f"<tr><td style='text-align:left'>{link}</td><td>{escape(r['status'])}</td>"
                     f"<td>{r['attempts']}</td><td>{r['seconds']:.1f}</td>"
                     f"<td style='text-align:left'>{escape(r['error'])}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)
