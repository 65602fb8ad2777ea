"""``lca-tui trace``: where in the model a hijack happens (causal tracing, engine.hijack.trace).

One prompt: ``--prompt "The Eiffel Tower is in" --prepend "The Eiffel Tower is not in Chicago. "
--true " Paris" --false " Chicago"``; the prepended text is used exactly as given, in front of the
prompt, and compared against the prompt alone. Over records: ``--dataset FILE --scheme S --n K``
(every record's prompt with K sentences of the scheme against the prompt alone).

Per block: ``restore_last`` (the clean residual stream restored at the last position), the restores
of the residual stream / attention output / MLP output at each of the prompt's positions, the
``knockout``s (the last position may not attend to the prepended tokens: all of them, the false
target's mentions, the rest; in one block or a window of blocks); per head its direct logit
attribution and its zero ablation at the last position. Measures: P(true), P(false) of the first
target tokens and logit_diff = logit(true) - logit(false).

``--method atp`` estimates every measure by attribution patching instead (engine.hijack.atp: one forward
of each prompt, one backward; the knockouts' attention recomputed exactly) and prints the same JSON
with "method": "atp" (P(true)/P(false) mapped from the estimated logit diff); ``--method both`` runs
the two and adds an "agreement" block (engine.hijack.atp_agreement: per measure family Spearman,
recall@5/10, the largest misses and the attention entropy where they are). One prompt only.
"""

from __future__ import annotations

import argparse
import json
import sys

METHODS = ("exact", "atp", "both")


def add_parser(sub):
    from lca_tui.commands.probe import add_model_flags
    from lca_tui.commands.record_options import add_record_flags

    p = sub.add_parser("trace", help="causal trace of a hijacked prompt against its clean prompt",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    p.add_argument("--prompt", help="the fact's prompt, e.g. 'The Eiffel Tower is in'")
    p.add_argument("--prepend", help="the text in front of the prompt, used exactly as given")
    p.add_argument("--true", dest="target_true", metavar="T", help="the true target, e.g. ' Paris'")
    p.add_argument("--false", dest="target_false", metavar="F", help="the false target, e.g. ' Chicago'")
    p.add_argument("--mention", metavar="TEXT", help="the text whose mentions a knockout targets (default: --false)")
    add_record_flags(p, dataset="trace records instead: builtin, a JSON file or a datasets id",
                     n="prepended sentences for --dataset (>= 1)", limit="trace at most N records")
    p.add_argument("--window", type=int, metavar="W", help="blocks of the windowed knockouts (default 5, at most all)")
    p.add_argument("--method", metavar="M", default="exact", help=(
        "exact: every intervention run (default); atp: attribution patching, one backward (an estimate); "
        "both: the two, with their agreement"))
    p.add_argument("--knock-sink", action="store_true", help=(
        "let the knockouts mask position 0 too (default: kept: the first token is the attention sink, BOS or not)"))
    p.add_argument("--per-record", action="store_true", help="--dataset --json: add every record's trace")
    p.add_argument("--store", metavar="DIR", default=None,
                   help="--dataset: job store; each record's trace is written as it finishes and a rerun resumes "
                        "from it (default: LCA_TUI_STORE or the user cache folder; `none`: no store)")
    p.add_argument("--no-save", action="store_true", help="do not record the trace in the session")
    p.add_argument("--json", action="store_true", help=(
        'one prompt: {"clean", "hijacked": {"p_true", "p_false", "logit_diff"}, "layers": [{"restore_last", '
        '"knockout", ...}], "heads": [[{"dla", "ablated"}]], ...}; --dataset: {"all", "flipped", "heads", '
        '"heads_atp", ...}'))
    return p


def _check(args):
    from engine.errors import UserError

    single = [args.prompt, args.prepend, args.target_true, args.target_false]
    if getattr(args, "method", "exact") not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, not {args.method!r}")
    if args.dataset is None:
        missing = [f for f, v in zip(("--prompt", "--prepend", "--true", "--false"), single) if v is None]
        if missing:
            raise UserError(f"trace needs {', '.join(missing)} (or --dataset FILE --scheme S --n K)")
        return
    if getattr(args, "method", "exact") != "exact":
        raise UserError(f"--method {args.method} traces one prompt: give --prompt/--prepend/--true/--false, "
                        "not --dataset")
    if any(v is not None for v in single):
        raise UserError("give either --prompt/--prepend/--true/--false or --dataset, not both")
    if args.scheme is None or args.n is None:
        raise UserError("--dataset needs --scheme S and --n K")
    if args.n < 1:
        raise UserError(f"--n must be at least 1 (the trace compares n prepended sentences with none), not {args.n}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, not {args.limit}")


def run(args) -> int:
    from engine.errors import UserError
    from engine.hijack import trace as T
    from lca_tui.commands.probe import load_model

    _check(args)
    if args.window is not None and args.window < 1:
        raise UserError(f"--window must be at least 1 block, not {args.window}")
    records = None
    if args.dataset is not None:
        from engine.hijack.counterfact import load_counterfact
        from engine.hijack.schemes import check_scheme, hijack_sentence

        args.scheme = check_scheme(args.scheme)
        records = load_counterfact(args.dataset, relation=args.relation, limit=args.limit, seed=args.seed)
        if not records:
            raise UserError("no records to trace: check the dataset, --relation and --limit")
        hijack_sentence(records[0], args.scheme, args.template)  # a bad template fails before the model loads
    lm = load_model(args)
    if records is None:
        pair = T.prepare(lm, args.prompt, args.prepend, args.target_true, args.target_false, args.mention)
        data = _one(args, lm, pair)
    else:
        data = _dataset(args, lm, records)
    method = data.get("method", "exact")
    where = None if method == "atp" else _save(args, {k: v for k, v in data.items() if k not in ("atp", "agreement")})
    if method == "atp" and not args.no_save:
        print("lca-tui: note: an estimate is not recorded in the session (run --method exact or both)", file=sys.stderr)
    for note in data.get("notes", []):
        print(f"lca-tui: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, allow_nan=False, default=str))
    else:
        from rich.console import Console

        console = Console()
        if records is None and method == "atp":
            console.print("[b]estimate[/b]: attribution patching (first order; P(true)/P(false) mapped from the "
                          "estimated logit diff)")
        (_print_one if records is None else _print_dataset)(data, console)
        if "agreement" in data:
            _print_agreement(data, console)
    if where:
        print(f"lca-tui: recorded in {where}", file=sys.stderr)
    return 0


def _one(args, lm, pair) -> dict:
    """The exact trace, the estimate, or both with their agreement (``--method``)."""
    import time

    from engine.atomic import jsonable
    from engine.hijack import trace as T

    method = getattr(args, "method", "exact")
    if method == "atp":
        from engine.hijack.atp import atp

        return jsonable(atp(lm, pair, window=args.window, knock_sink=args.knock_sink).to_dict())
    t0 = time.perf_counter()
    exact = T.trace(lm, pair, window=args.window, knock_sink=args.knock_sink).to_dict()
    if method == "exact":
        return jsonable(exact)
    from engine.hijack.atp import atp
    from engine.hijack.atp_agreement import agreement, attention_entropy

    t1 = time.perf_counter()
    est = atp(lm, pair, window=args.window, knock_sink=args.knock_sink).to_dict()
    t2 = time.perf_counter()
    agree = agreement(exact, est, attention_entropy(lm, pair))
    agree["seconds"] = {"exact": t1 - t0, "atp": t2 - t1}
    return jsonable({**exact, "method": "both", "atp": est, "agreement": agree})


def _print_agreement(data: dict, console) -> None:
    from engine.hijack.atp_agreement import summary_lines

    agree = data["agreement"]
    sec = agree.get("seconds", {})
    console.print(f"[b]attribution patching against the exact trace[/b] (effects on logit diff; exact "
                  f"{sec.get('exact', 0):.2f} s, estimate {sec.get('atp', 0):.2f} s)")
    for line in summary_lines(agree):
        console.print(line, highlight=False, markup=False)


def _dataset(args, lm, records) -> dict:
    from engine.jobstore import open_store

    store = open_store(args.store, warn=lambda line: print(f"lca-tui: {line}", file=sys.stderr, flush=True))
    kwargs = dict(template=args.template, window=args.window, per_record=args.per_record, store=store,
                  knock_sink=args.knock_sink)
    data = _traced(args, lm, records, kwargs)
    if data.get("resumed_records"):
        print(f"lca-tui: took {data['resumed_records']} of {len(records)} records from the store {store.root}",
              file=sys.stderr)
    return data


def _traced(args, lm, records, kwargs) -> dict:
    from engine.atomic import jsonable
    from engine.experiments.mechanism import dataset_trace
    from engine.job_context import JobContext

    if args.json:
        return jsonable(dataset_trace(lm, records, args.scheme, args.n, **kwargs))
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(f"tracing records ({lm.name})"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("trace", total=len(records))
        ctx = JobContext(lambda done, total, _partial: bar.update(task, completed=done))
        return jsonable(dataset_trace(lm, records, args.scheme, args.n, ctx=ctx, **kwargs))


def _save(args, data: dict) -> str | None:
    if args.no_save:
        return None
    from engine.session.store import open_cli_session

    return str(open_cli_session(getattr(args, "session", None)).record_trace(data))


def _m(d: dict) -> str:
    return f"{d['p_true']:.3f}  {d['p_false']:.3f}  {d['logit_diff']:+.2f}"


def _short(d: dict) -> str:
    return f"{d['p_true']:.3f} {d['logit_diff']:+.2f}"


def _print_one(data: dict, console) -> None:
    from rich.table import Table

    from engine.hijack.measures import CURVES
    from engine.hijack.trace import positions_note

    console.print(f"[b]{data['model']}[/b]  true {data['target_true']!r}  false {data['target_false']!r}  "
                  f"(P(true)  P(false)  logit diff)")
    console.print(f"clean     {_m(data['clean'])}\nhijacked  {_m(data['hijacked'])}")
    console.print(positions_note(data), highlight=False, markup=False)
    table = Table(title=(f"per block, last position: P(true) and logit diff (knockout: all prepended tokens; "
                         f"mentions: the false target's only; ±w: a window of {data['window']} blocks)"),
                  title_justify="left")
    for col in ("block", *(m.name for m in CURVES), "dla attn"):
        table.add_column(col, justify="right")
    for entry in data["layers"]:
        table.add_row(str(entry["layer"]), *(_short(entry[m.name]) for m in CURVES), f"{entry['dla_attn']:+.2f}")
    console.print(table)
    flat = [(e["ablated"]["logit_diff"] - data["hijacked"]["logit_diff"], li, h)
            for li, row in enumerate(data["heads"]) for h, e in enumerate(row)]
    top = sorted(flat, reverse=True)[:5]
    console.print("heads whose zero ablation raises logit diff most: "
                  + ", ".join(f"L{li}H{h} {rise:+.2f}" for rise, li, h in top))


def _n(x) -> str:
    return "—" if x is None else f"{x:+.2f}"


def _print_dataset(data: dict, console) -> None:
    from rich.table import Table

    from engine.hijack.measures import CURVES, KNOCKOUT

    s = data["all"]
    console.print(f"[b]{data['model']}[/b] {data['scheme']} n = {data['n']}: {data['records']} records traced "
                  f"({len(data['skipped'])} skipped), ES clean {s['es_clean']:.2f} -> hijacked {s['es_hijacked']:.2f}; "
                  f"{data['flipped']['records']} flipped")
    table = Table(title="mean logit diff per block (95% CI), all records", title_justify="left")
    names = [m.name for m in CURVES]
    table.add_column("block", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for layer in range(len(s["layers"][KNOCKOUT.name]["logit_diff"])):
        cells = []
        for name in names:
            c = s["layers"][name]["logit_diff"][layer]
            cells.append(f"{_n(c['mean'])} [{_n(c['lo'])}, {_n(c['hi'])}]")
        table.add_row(str(layer), *cells)
    console.print(table)
    console.print(f"clean {s['clean']['logit_diff']['mean']:+.2f}, hijacked {s['hijacked']['logit_diff']['mean']:+.2f}")
    for a in data["heads"].get("ablation", []):
        console.print(f"top {a['k']:>2} heads ablated (held-out {data['heads']['evaluated_on']} records): "
                      f"ES {a['es']:.3f} (none {a['es_none']:.3f}), up {a['up']} down {a['down']}, "
                      f"sign-test p = {a['sign_p']:.3g}")
    if data.get("heads_atp"):
        from engine.experiments.mechanism import heads_atp_note

        console.print(heads_atp_note(data["heads_atp"]), markup=False)
