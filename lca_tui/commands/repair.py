"""``lca-tui repair``: defenses against the hijack, scored on held-out records (engine.hijack.repair).

The records at even positions select (heads by their ablation rise; the attention defense's blocks
from the knockout curve: the fewest blocks carrying half of the positive rise of logit(true) -
logit(false) when the last position may not attend to the prepended tokens there; alpha from a small
grid: the largest ES drop whose clean AND reverse accuracy each fall by at most 0.02), the records at
odd positions evaluate: ES before -> after with a 95% CI of the drop and a paired sign test, accuracy
on the clean prompts (n = 0) and under the reverse scheme before -> after (what the defense costs when
the context is right; no reverse for custom), the mean change of log P(true), and the frontier over alpha.

    lca-tui repair --dataset builtin --scheme not-think --n 3 --limit 40
    lca-tui repair --dataset builtin --scheme not-think --n 3 --defense heads attention --alpha 0.5
    lca-tui repair --dataset builtin --scheme not-think --n 3 --defense-file my_heads.json --json
    lca-tui repair --dataset builtin --scheme custom --template "{subject} is not in {target_false}." --n 2
    lca-tui repair --dataset azhx/counterfact --scheme relation --n 3 --limit 400 --jobs 4 --out runs/rel
    lca-tui repair ... --gpus all            (one worker per GPU)   ... --executor slurm --store /shared/jobs

At scale: the work is units of --chunk records (selection units, then every (defense, alpha, half)
score unit at once), each a job of the job store (--store; a rerun of the same command takes the
finished units from there and says how many) run on the sweep's executor (--jobs N worker processes,
--gpus, --executor slurm); progress with an ETA on stderr (a bar on a terminal, else a line every 10%);
Ctrl-C keeps the finished units in the store. The result does not depend on the split: each record is
scored alone. --out DIR writes repair.json (the --json object) and each scored defense as <name>.json
(a steering vector beside it as <name>.safetensors), loadable again with --defense-file.

Defenses: none, drop-context (the question alone: the ceiling), heads, attention, contrastive, steer
(``engine.hijack.defenses.DEFENSES``). A defense file is the JSON a defense is saved as
(``{"name", "params"}``, a steering vector beside it as safetensors): it is taken as it is.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub):
    from engine.hijack.defenses import DEFENSES
    from engine.hijack.repair import CHUNK
    from lca_tui.commands.probe import add_model_flags
    from lca_tui.commands.record_options import add_record_flags
    from lca_tui.commands.sweep_options import add_sweep_flags

    p = sub.add_parser("repair", help="defenses against the hijack, scored on held-out records",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    add_record_flags(p, dataset="builtin, a JSON file of CounterFact records or a datasets id",
                     n="prepended sentences (>= 1)", limit="use at most N records (>= 2: half select, half evaluate)")
    p.add_argument("--defense", nargs="+", metavar="NAME", choices=list(DEFENSES), help=(
        "defenses to score (default: every one but none): " + ", ".join(DEFENSES)))
    p.add_argument("--alpha", type=float, metavar="A", help="fix alpha instead of choosing it on the selection half")
    p.add_argument("--defense-file", nargs="+", metavar="F", help="a saved defense (JSON), scored as it is")
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="sequences per forward (default 8)")
    p.add_argument("--chunk", type=int, default=CHUNK, metavar="K",
                   help=f"records per unit (job) of work (default {CHUNK}); the result does not depend on it")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes on this machine (default 1)")
    p.add_argument("--out", metavar="DIR", help=(
        "write repair.json (the --json object) and each scored defense as <name>.json (+ <name>.safetensors "
        "for steer), loadable with --defense-file"))
    p.add_argument("--json", action="store_true", help=(
        'print {"model", "scheme", "n", "selection", "evaluation", "defenses": [{"name", "params", '
        '"es_before", "es_after", "es_ci", "sign_p", "clean_accuracy_before", ...}]}'))
    p.add_argument("--no-save", action="store_true", help="do not record the result in the session")
    add_sweep_flags(p)
    return p


def _check(args):
    from engine.errors import UserError

    if args.dataset is None or args.scheme is None or args.n is None:
        raise UserError("repair needs --dataset D --scheme S --n K")
    if args.n < 1:
        raise UserError(f"--n must be at least 1 (a defense undoes prepended sentences), not {args.n}")
    if args.limit is not None and args.limit < 2:
        raise UserError(f"--limit must be at least 2 (one record selects, one evaluates), not {args.limit}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.chunk < 1:
        raise UserError(f"--chunk must be at least 1, not {args.chunk}")
    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {args.jobs}")
    if args.out is not None:
        from pathlib import Path

        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is not a folder")


def run(args) -> int:
    from engine.errors import UserError
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.defenses import Defense, check_defense, check_for
    from engine.hijack.repair import repair
    from engine.hijack.schemes import check_scheme, hijack_sentence
    from lca_tui.commands.probe import load_model

    _check(args)
    scheme = check_scheme(args.scheme)
    files = [Defense.load(f) for f in args.defense_file or ()]  # a bad file fails before the model loads
    records = load_counterfact(args.dataset, relation=args.relation, limit=args.limit, seed=args.seed)
    if len(records) < 2:
        raise UserError("repair needs at least 2 records: check the dataset, --relation and --limit")
    hijack_sentence(records[0], scheme, args.template)  # a bad template fails before the model loads
    names = list(args.defense) if args.defense else ([] if files else
                                                     ["drop-context", "heads", "attention", "contrastive", "steer"])
    if args.alpha is not None:  # alpha's range, before the model loads
        check_defense(Defense("none", args.alpha))
        if "attention" in names and args.alpha > 1:
            raise UserError(f"the attention defense keeps alpha in [0, 1] (a share of the attention), not {args.alpha}")
    from engine.experiments.repair_jobs import hold, model_spec, release, runner
    from lca_tui.commands.probe import model_names
    from lca_tui.commands.sweep_options import open_sweep

    with open_sweep(args):  # a bad --store / --gpus / slurm setting fails before the model loads
        lm = load_model(args)
        for d in files:
            check_for(lm, d)
        model = model_spec(model_names(args)[0], args.device, args.dtype, args.trust_remote_code)
        hold(lm, model)  # units run in this process use the loaded model
        try:
            data = _with_progress(lambda ctx: repair(
                lm, records, scheme, args.n, defenses=[*names, *files], alpha=args.alpha, template=args.template,
                batch_size=args.batch_size, ctx=ctx, run_units=runner(model, args.jobs), chunk=args.chunk),
                lm.name)
        finally:
            release()
    scored = [d.pop("defense") for d in data["defenses"]]  # the objects; their JSON is name + params
    if args.out is not None:
        _save(args.out, data, scored)
    if not args.no_save:
        from engine.session.store import open_cli_session

        where = open_cli_session(getattr(args, "session", None)).record_repair(data)
        print(f"lca-tui: recorded in the session: {where}", file=sys.stderr, flush=True)
    if args.json:
        from engine.atomic import jsonable

        print(json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False, default=str))
    else:
        _print(data)
    return 0


def _save(where: str, data: dict, scored: list) -> None:
    """repair.json and one ``Defense.save`` per scored defense (``<name>.json``, ``<name>-2.json`` ...)."""
    from pathlib import Path

    from engine.atomic import atomic_write_json

    out = Path(where)
    atomic_write_json(out / "repair.json", data)
    used: dict[str, int] = {}
    for d in scored:
        used[d.name] = used.get(d.name, 0) + 1
        stem = d.name if used[d.name] == 1 else f"{d.name}-{used[d.name]}"
        d.save(out / f"{stem}.json")
    print(f"lca-tui: wrote repair.json and {len(scored)} defense files to {out}", file=sys.stderr, flush=True)


def _with_progress(run, label: str):
    """``run(ctx)`` with progress in units and an ETA on stderr: a rich bar on a terminal, else a line at
    every further 10% (the ETA from the rate of the units run here, units from the store excluded)."""
    import time

    from rich.console import Console

    from engine.job_context import JobContext
    from lca_tui.commands.sweep_options import eta_text

    err = Console(stderr=True)
    if not err.is_terminal:
        state = {"t0": time.perf_counter(), "d0": None, "next": 0.1}

        def report(done, total, _partial):
            now = time.perf_counter()
            if state["d0"] is None:  # a first report at once counts units read from the store, not run
                state["d0"] = done if now - state["t0"] < 1.0 else 0
            if total <= 0 or done / total < state["next"]:
                return
            while state["next"] <= done / total:
                state["next"] += 0.1
            eta = eta_text(done, total, state["d0"], now - state["t0"])
            print(f"lca-tui: repair {label}: {done}/{total} units ({done / total:.0%}), ETA {eta}",
                  file=sys.stderr, flush=True)

        return run(JobContext(report))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(f"repair ({label})"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("units", total=None)
        return run(JobContext(lambda done, total, _partial: bar.update(task, completed=done, total=total)))


def _print(data: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from engine.hijack.defenses import settings_text
    from textnum import number

    def arrow(before, after) -> str:
        return f"{number(before, '.2f')}→{number(after, '.2f')}"

    console = Console()
    if not console.is_terminal:  # piped or redirected: wide enough for every column (no ellipses)
        console = Console(width=160)
    console.print(f"[b]{data['model']}[/b] {data['scheme']} n = {data['n']}: selected on {len(data['selection'])} "
                  f"records, evaluated on {len(data['evaluation'])}")
    table = Table(title="evaluation half, before→after (ES: hijack success, lower is better; clean/reverse: "
                        "accuracy; CI 95% of the ES drop, p sign test; Δlog P rev: under the reverse scheme; ties: "
                        "P(true) = P(false) after)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("defense", no_wrap=True)
    for col in ("ES", "drop CI", "p", "clean", "reverse", "Δlog P", "Δlog P rev", "ties"):  # p: sign test
        table.add_column(col, justify="right", no_wrap=True)
    settings = []
    for d in data["defenses"]:
        lo, hi = d["es_ci"]
        table.add_row(d["name"], arrow(d["es_before"], d["es_after"]), f"{number(lo, '+.2f')}..{number(hi, '+.2f')}",
                      number(d["sign_p"], ".2g"), arrow(d["clean_accuracy_before"], d["clean_accuracy_after"]),
                      arrow(d.get("reverse_accuracy_before"), d.get("reverse_accuracy_after")),
                      number((d.get("log_p_true_change") or {}).get("mean"), "+.2f"),
                      number((d.get("reverse_log_p_true_change") or {}).get("mean"), "+.2f"),
                      str(d.get("tied_after", "")))
        rest = settings_text(d["params"], ", ")
        settings.append(f"{d['name']}: alpha {d['params']['alpha']:g}" + (f", {rest}" if rest else ""))
    console.print(table)
    console.print("\n".join(settings), highlight=False, markup=False)
