"""``lca-tui experiment``: reproduce one of the paper's figures and say whether its claim holds here.

    lca-tui experiment list
    lca-tui experiment value-matrix --quick            # minutes on a 2-core CPU
    lca-tui experiment value-matrix --quick --results results   # also save results/quick/value-matrix.json
    lca-tui experiment render                          # EXPERIMENTS.md from results/ (--check: compare)
    lca-tui experiment rejudge                         # recompute saved verdicts from their rows
    lca-tui experiment value-matrix --jobs 8           # the paper's grid, 8 processes
    lca-tui experiment value-matrix --gpus all         # one process per GPU
    lca-tui experiment value-matrix --executor slurm --store /shared/lca-jobs --slurm-partition gpu
    torchrun --nproc_per_node 4 -m lca_tui experiment embedding-dim --out result.json

Grids: ``--tiny`` (seconds, for tests), ``--quick`` (a 2-core CPU) or the paper's (the default, for a
GPU). ``--set KEY=VALUE`` changes one grid parameter (JSON values or comma lists, e.g.
``--set models=smollm2-135m,openai-community/gpt2``). The result is recorded in the session
(``experiments/<name>-<id>.json``) or written to ``--out``; ``--json`` prints it as one JSON object.
Progress goes to stderr. Every finished job is kept in the job store (``--store DIR``, default the
user cache folder): the same command run again takes them from there (``resumed_jobs`` in the JSON, and
a line on stderr) and runs only the rest. Under ``torchrun`` jobs are sharded over the ranks (through
the same store) and rank 0 reports.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub):
    p = sub.add_parser("experiment", help="run one of the paper's experiments (or `experiment list`)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME",
                   help="experiment name, `list` to list them, or `render` to write EXPERIMENTS.md from results/")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--quick", dest="level", action="store_const", const="quick",
                       help="the small grid for a 2-core CPU (minutes)")
    level.add_argument("--tiny", dest="level", action="store_const", const="tiny",
                       help="the tiny grid used by the tests (seconds)")
    level.add_argument("--paper", dest="level", action="store_const", const="paper",
                       help="the paper's grid, for a GPU (the default)")
    p.set_defaults(level="paper")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="parallel worker processes on this machine (default: 1)")
    p.add_argument("--seeds", type=int, default=None, metavar="K", help="use seeds 0..K-1 instead of the grid's")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps (default: the grid's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one grid parameter (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--out", metavar="PATH",
                   help="write the result JSON here (atomically); with `render`: the Markdown file "
                        "(default EXPERIMENTS.md)")
    p.add_argument("--results", metavar="DIR", default=None,
                   help="also save the result as DIR/<level>/<name>.json (the committed results/ folder); "
                        "with `render`: the folder to read (default results)")
    p.add_argument("--check", action="store_true",
                   help="with `render`: do not write, exit 1 if the file differs from the rendering")
    p.add_argument("--no-save", action="store_true", help="do not record the result in the session")
    from lca_tui.commands.sweep_options import add_sweep_flags

    add_sweep_flags(p)
    return p


def _overrides(items: list[str]) -> dict:
    from engine.errors import UserError
    from engine.experiments import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set needs KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def _list(args) -> int:
    from engine import experiments as E

    if args.json:
        print(json.dumps({"experiments": [{"name": e.name, "title": e.title, "figure": e.figure,
                                           "claim": E.claim(e.name)} for e in E.EXPERIMENTS.values()]},
                         ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Experiments (lca-tui experiment NAME [--quick|--tiny])", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("figure", no_wrap=True)
    table.add_column("what")
    for e in E.EXPERIMENTS.values():
        table.add_row(e.name, e.figure, e.title)
    Console().print(table)
    return 0


def _save(args, data: dict) -> str | None:
    """Write ``--out`` or record into the session; returns where, or None."""
    if args.out:
        from engine.atomic import atomic_write_json

        return str(atomic_write_json(args.out, data))
    if args.no_save:
        return None
    from engine.session import store

    opener = getattr(store, "open_cli_session", None)
    session = None
    if opener is not None:
        session = opener(getattr(args, "session", None))
    elif getattr(args, "session", None):
        session = store.Session.open(args.session)
    if session is None or not hasattr(session, "record_experiment"):
        return None
    return str(session.record_experiment(data))


def run(args) -> int:
    from engine import experiments as E
    from engine.errors import UserError

    if args.name.strip().lower() == "list":
        return _list(args)
    if args.name.strip().lower() == "render":
        return _render(args)
    if args.name.strip().lower() == "all":
        return _all(args)
    if args.name.strip().lower() == "rejudge":
        return _rejudge(args)
    exp = E.get(args.name)
    if isinstance(args.jobs, bool) or args.jobs < 1:
        raise UserError(f"--jobs must be a positive integer, not {args.jobs}")
    grid = E.build_grid(exp.name, args.level, seeds=args.seeds, device=args.device,
                        overrides=_overrides(args.overrides))

    from engine.experiments import distributed
    from lca_tui.commands.sweep_options import open_sweep

    ctx = distributed.auto_init()
    main = distributed.is_main()
    try:
        with open_sweep(args, quiet=not main) as sw:
            result = _run_with_progress(exp, grid, args.jobs, main)
        if not main:
            return 0
        data = result.to_dict()
        data["resumed_jobs"] = sw.resumed  # jobs taken from the store (--store)
        where = _save(args, data)
        if args.results:
            from engine.experiments.results import save_result

            saved = save_result(args.results, data, _run_info(args, exp.name))
            print(f"lca-tui: result saved to {saved}", file=sys.stderr)
        if args.json:
            print(json.dumps(data, ensure_ascii=False, allow_nan=False))
        else:
            print_result(result, exp)
        if where:
            print(f"lca-tui: result saved to {where}", file=sys.stderr)
        elif not args.no_save:
            print("lca-tui: result not saved (no session store; pass --out PATH)", file=sys.stderr)
        return 0
    finally:
        if ctx is not None:
            distributed.shutdown()


def _code_version() -> str:
    """The git commit of the code that ran (+ "-dirty" when engine/ or lca_tui/ had local edits), or ''."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "engine", "lca_tui"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("-dirty" if dirty else "")


def _run_info(args, name: str) -> dict:
    """How the result was made, stored beside it in results/: command, jobs, load, machine."""
    import os
    import platform

    import torch

    cmd = f"lca-tui experiment {name} --{args.level} --jobs {args.jobs}"
    if args.seeds is not None:
        cmd += f" --seeds {args.seeds}"
    for item in args.overrides:
        cmd += f" --set {item}"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count()
    return {"command": cmd + " --results results", "jobs": args.jobs, "code": _code_version(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "machine": f"{platform.machine()}, {ncpu} CPU cores, {gpu}, torch {torch.__version__}, "
                       f"Python {platform.python_version()}"}


def _all(args) -> int:
    """Every synthetic experiment (not the language-model ones), one after the other, each result saved
    under --results as soon as it is done; trained models are shared between experiments through
    LCA_TUI_TRAIN_CACHE (default: the user cache folder)."""
    import os
    import time
    from pathlib import Path

    from engine import experiments as E
    from engine.errors import UserError

    if not args.results:
        raise UserError("`experiment all` needs --results DIR (each result is saved there as it finishes)")
    if "LCA_TUI_TRAIN_CACHE" not in os.environ:
        import platformdirs

        os.environ["LCA_TUI_TRAIN_CACHE"] = str(Path(platformdirs.user_cache_dir("lca-tui")) / "train-cache")
    from engine.experiments.results import save_result

    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    cache = Path(os.environ["LCA_TUI_TRAIN_CACHE"])
    cached = len(list(cache.glob("*.safetensors"))) if cache.is_dir() else 0
    names = [e.name for e in E.EXPERIMENTS.values() if not e.uses_lm]
    only = _overrides(args.overrides).get("only")
    if only:  # --set only=a,b,c: these, in this order
        wanted = only if isinstance(only, list) else [only]
        names = [E.get(n).name for n in wanted]
    from lca_tui.commands.sweep_options import open_sweep

    for name in names:
        exp = E.get(name)
        grid = E.build_grid(name, args.level, seeds=args.seeds, device=args.device)
        with open_sweep(args) as sw:
            result = _run_with_progress(exp, grid, args.jobs, True)
        data = result.to_dict()
        data["resumed_jobs"] = sw.resumed
        info = _run_info(args, name)
        info["command"] = f"lca-tui experiment {name} --{args.level} --jobs {args.jobs} --results results"
        info["all_run"] = {"started": started, "elapsed_s": round(time.perf_counter() - t0, 1),
                           "models_cached_at_start": cached, "experiments": len(names)}
        where = save_result(args.results, data, info)
        print(f"{name}: {data['verdict']} ({data['seconds']:.0f} s) -> {where}", flush=True)
    print(f"all {len(names)} experiments: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    return 0


def _rejudge(args) -> int:
    """Recompute every saved verdict under --results (default results) from its rows with the current rules."""
    import json
    from pathlib import Path

    from engine.atomic import atomic_write_json
    from engine.experiments.results import rejudge

    root = Path(args.results or "results")
    for path in sorted(root.glob("*/*.json")):
        old = json.loads(path.read_text(encoding="utf-8"))
        new = rejudge(old)
        atomic_write_json(path, new)
        change = "" if new["verdict"] == old.get("verdict") else f" (was {old.get('verdict')})"
        print(f"{path}: {new['verdict']}{change}")
    return 0


def _render(args) -> int:
    from pathlib import Path

    from engine.experiments.render import render_markdown

    root = args.results or "results"
    out = Path(args.out or "EXPERIMENTS.md")
    text = render_markdown(root)
    if args.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(f"lca-tui: {out} {'matches' if same else 'differs from'} the rendering of {root}/", file=sys.stderr)
        return 0 if same else 1
    from engine.atomic import atomic_write_text

    atomic_write_text(out, text)
    print(f"lca-tui: wrote {out} from {root}/", file=sys.stderr)
    return 0


def _run_with_progress(exp, grid, jobs: int, main: bool):
    import time

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from engine.job_context import JobContext
    from lca_tui.commands.sweep_options import eta_text

    err = Console(stderr=True)
    fn = exp.function()
    if not main or not err.is_terminal:
        if main:
            print(f"lca-tui: running {exp.name} ({grid.level} grid, jobs={jobs})", file=sys.stderr, flush=True)
        last = {"done": -1, "t0": time.perf_counter(), "d0": None}

        def report(done, total, _partial):
            if last["d0"] is None:  # a first report at once counts jobs read from the store, not run
                last["d0"] = done if time.perf_counter() - last["t0"] < 1.0 else 0
            if main and done != last["done"]:
                last["done"] = done
                eta = eta_text(done, total, last["d0"], time.perf_counter() - last["t0"])
                print(f"lca-tui: {exp.name}: {done}/{total} jobs, ETA {eta}", file=sys.stderr, flush=True)

        return fn(grid, ctx=JobContext(report), jobs=jobs)
    with Progress(TextColumn(f"{exp.name} ({grid.level})"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("jobs", total=None)
        return fn(grid, ctx=JobContext(lambda done, total, _partial: bar.update(task, completed=done, total=total)),
                  jobs=jobs)


# ----------------------------------------------------------------------------------- printing
def _fmt(v) -> str:
    from engine.experiments.render import format_value
    from textnum import special

    return special(v) or format_value(v, markdown=False)


_MARKS = ("•", "x", "+", "o", "*", "#", "@", "%", "=", "~", "^", "&")


def chart_text(result, exp, width: int = 80, height: int = 20, color: bool = True) -> str:
    """The result's curves as a plotext chart string (empty when there are no curves)."""
    import plotext as plt

    curves = result.curves if hasattr(result, "curves") else result["curves"]
    if not curves:
        return ""
    plt.clear_figure()
    chart = exp.chart
    for i, (label, c) in enumerate(list(curves.items())[:12]):
        pts = [(x, y) for x, y in zip(c["x"], c["y"]) if x is not None and y is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        # colour tells the series apart in a terminal; without colour each series gets its own mark
        plt.plot(list(xs), list(ys), marker="braille" if color else _MARKS[i % len(_MARKS)], label=label)
    if chart.xlog:
        plt.xscale("log")
    if chart.ylim:
        plt.ylim(*chart.ylim)
    plt.xlabel(chart.xlabel)
    plt.ylabel(chart.ylabel)
    title = result.title if hasattr(result, "title") else result["title"]
    plt.title(title)
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    return plt.build()


def print_result(result, exp, console=None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if console is None:
        import os

        console = Console()
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console = Console(width=140)  # piped to a file: do not fold the table to 80 columns
    text = chart_text(result, exp, width=min(110, max(40, console.width - 2)), color=console.is_terminal)
    if text:
        console.print(Text.from_ansi(text))
    cols: list[str] = []
    for row in result.rows:
        for k in row:
            if k not in cols and not k.endswith("_runs"):
                cols.append(k)
    table = Table(title=f"{result.name}: {result.title} ({result.figure}; grid {result.grid.get('level')}, "
                        f"{result.seconds:.1f} s)", title_justify="left")
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "scheme", "metric", "relation", "W_E", "regime")
                         else "right", overflow="fold")
    for row in result.rows:
        table.add_row(*(_fmt(row.get(c)) for c in cols))
    console.print(table)
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"))
    console.print(Text(f"paper: {result.claim}"))
    style = {"holds": "bold green", "does not hold": "bold red"}.get(result.verdict, "bold yellow")
    line = Text("verdict: ")
    line.append(result.verdict, style=style)
    line.append(f"  (rule: {result.rule})")
    console.print(line)
    for reason in getattr(result, "reasons", []) or []:
        console.print(Text(f"  - {reason}"))
