"""``lca-tui hijack``: the efficacy curve ES(n) of a hijacking scheme (Fig. 2a not-think, Fig. 2b relation).

ES(n) = fraction of CounterFact records whose false target beats the true one after n prepended
sentences; reverse schemes report accuracy (true beats false) instead. Repeat ``--model`` to compare
models on the same records, as Fig. 2 does. Flip point of a record: the smallest n at which it counts
(forward schemes: P(false) > P(true)); none if it never does for n <= N. Prints a table, a terminal
chart and the flip points' distribution, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub):
    from lca_tui.commands.probe import add_model_flags

    p = sub.add_parser("hijack", help="efficacy curve ES(n) of a context-hijacking scheme",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, several=True)
    p.add_argument("--dataset", default="builtin",
                   help="builtin (default), a HF dataset id (online) or a local counterfact.json/.jsonl/.parquet")
    p.add_argument("--relation", metavar="ID", help="keep only these relation ids, e.g. P190 or P17,P19")
    p.add_argument("--scheme", required=True,
                   help="not-think | relation | reverse-not-think | reverse-relation | custom")
    p.add_argument("--template", metavar="T",
                   help="custom scheme: a sentence with {subject}, {target_true}, {target_false}")
    p.add_argument("--max-prepends", type=int, required=True, metavar="N", help="evaluate n = 0..N")
    p.add_argument("--limit", type=int, metavar="K", help="evaluate at most K records")
    p.add_argument("--seed", type=int, metavar="S", help="shuffle the records with this seed before --limit")
    p.add_argument("--batch-size", type=int, default=16, metavar="B",
                   help="sequences per forward pass (default: 16; lower it if memory runs out)")
    p.add_argument("--scoring", default="whole", choices=("whole", "first", "nll"),
                   help="whole-target probability (default), first-token probability, or mean NLL (ROME)")
    p.add_argument("--store", metavar="DIR", default=None,
                   help="job store: each chunk of records is written here as it is scored, and a rerun resumes "
                        "from it (default: LCA_TUI_STORE or the user cache folder; `none`: no store)")
    p.add_argument("--json", action="store_true",
                   help='print {"scheme", "metric", "scoring", "records", "max_prepends", "models": [{"model", '
                        '"curve": [{"n", "es", "p_true", "p_false"}], "flips": {"records", "flipped", "never", '
                        '"mean", "median", "histogram", "earliest", "never_ids"}, "flip_points": [{"case_id", '
                        '"n"}], "notes"}]}')
    return p


def run(args) -> int:
    from engine.errors import UserError
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import check_request
    from lca_tui.commands.probe import model_names

    names = model_names(args)
    keys = [str(n or "smollm2-135m").strip().lower() for n in names]
    twice = sorted({n for n in keys if keys.count(n) > 1})
    if twice:
        raise UserError(f"--model {twice[0]} is given twice: name each model once")
    records = load_counterfact(args.dataset, relation=args.relation, limit=args.limit, seed=args.seed)
    check_request(records, args.scheme, args.max_prepends, args.scoring, args.batch_size, args.template)
    from engine.jobstore import open_store

    store = open_store(args.store, warn=lambda line: print(f"lca-tui: {line}", file=sys.stderr, flush=True))
    results = [_evaluate(args, name, records, store) for name in names]
    if store is not None and store.hits:
        print(f"lca-tui: took {store.hits} chunks of records from the store {store.root}", file=sys.stderr)
    for res in results:
        for note in res.notes:
            print(f"lca-tui: note: {res.model}: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(results), ensure_ascii=False))
        return 0
    from rich.console import Console

    _print_human(results, Console())
    return 0


def _evaluate(args, name, records, store=None):
    """Load one model, check the window, evaluate it in chunks streamed to the job store (progress with
    an ETA on stderr: a bar on a terminal, else a line every 10%), and let it go."""
    import gc

    from engine.hijack.efficacy_stream import efficacy_streamed
    from engine.job_context import JobContext
    from lca_tui.commands.probe import load_model

    lm = load_model(args, name)
    kwargs = dict(template=args.template, scoring=args.scoring, batch_size=args.batch_size, store=store)
    try:
        from rich.console import Console

        err = Console(stderr=True)
        if args.json or not err.is_terminal:
            return efficacy_streamed(lm, records, args.scheme, args.max_prepends,
                                     ctx=JobContext(_progress_lines(lm.name)), **kwargs)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(f"scoring prompts ({lm.name})"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task("eval", total=len(records) * (args.max_prepends + 1))
            return efficacy_streamed(lm, records, args.scheme, args.max_prepends,
                                     ctx=JobContext(lambda done, total, _partial: bar.update(task, completed=done)),
                                     **kwargs)
    finally:
        del lm  # one model in memory at a time
        gc.collect()


def _progress_lines(label: str):
    """``progress(done, total, partial)`` printing a stderr line at every further 10% with the ETA (from the rate
    of the prompts scored in this run, so prompts read from the store do not skew it)."""
    import time

    from lca_tui.commands.sweep_options import eta_text

    state = {"t0": None, "d0": 0, "next": 0.1}

    def report(done, total, _partial):
        now = time.perf_counter()
        if state["t0"] is None:
            state["t0"], state["d0"] = now, done
            return
        if total <= 0 or done / total < state["next"]:
            return
        while state["next"] <= done / total:
            state["next"] += 0.1
        eta = eta_text(done, total, state["d0"], now - state["t0"])
        print(f"lca-tui: {label}: {done}/{total} prompts ({done / total:.0%}), ETA {eta}", file=sys.stderr,
              flush=True)

    return report


def to_json(results) -> dict:
    """The ``--json`` object: shared settings, then one curve and flip-point set per model."""
    from engine.hijack.efficacy import flip_points, flip_summary

    first = results[0]
    models = []
    for res in results:
        points = flip_points(res)
        models.append({
            "model": res.model,
            "curve": [{"n": p.n, "es": p.es, "p_true": p.p_true, "p_false": p.p_false} for p in res.curve],
            "flips": flip_summary(points, res.max_prepends).to_dict(),
            "flip_points": [{"case_id": p.case_id, "n": p.n} for p in points],
            "notes": list(res.notes),
        })
    return {"scheme": first.scheme, "metric": first.metric, "scoring": first.scoring, "records": first.n_records,
            "max_prepends": first.max_prepends, "models": models}


def _print_human(results, console) -> None:
    import plotext as plt
    from rich.table import Table
    from rich.text import Text

    from engine.hijack.efficacy import flip_points, flip_summary

    first = results[0]
    label = "ES" if first.metric == "efficacy" else "accuracy"
    several = len(results) > 1
    table = Table()
    table.add_column("n", justify="right")
    for res in results:  # several models: their ES side by side; one: its mean probabilities too
        cols = [f"{label} {res.model}"] if several else [label, "mean P(true)", "mean P(false)"]
        for col in cols:
            table.add_column(col, justify="right")
    table.add_column("records", justify="right")
    for i, p in enumerate(first.curve):
        row = [str(p.n)]
        for res in results:
            q = res.curve[i]
            row += [f"{q.es:.3f}"] if several else [f"{q.es:.3f}", f"{q.p_true:.4f}", f"{q.p_false:.4f}"]
        table.add_row(*row, str(p.count))

    ns = [p.n for p in first.curve]
    plt.clear_figure()
    for res in results:
        es = [p.es for p in res.curve]
        plt.plot(ns, es, marker="braille", label=res.model if several else None)
        plt.scatter(ns, es, marker="●")
    plt.ylim(0, 1)
    plt.xticks(ns)
    plt.xlabel("n prepended sentences")
    plt.title(f"{label}(n), {first.scheme}")
    plt.plotsize(min(70, max(30, console.width - 2)), 16)
    if not console.is_terminal:
        plt.theme("clear")
    console.print(Text.from_ansi(plt.build()))
    models = ", ".join(r.model for r in results)
    console.print(Text(f"{first.metric} vs prepended sentences: scheme {first.scheme}, "
                       f"model{'s' if several else ''} {models}, {first.n_records} records, scoring {first.scoring}"
                       + (" (cancelled: partial)" if any(r.cancelled for r in results) else ""), style="bold"))
    console.print(table)

    flips = Table(title="Flip points: smallest n at which a record counts (none: never up to "
                        f"n = {first.max_prepends})", title_justify="left")
    for col in ("model", "flipped", "never", "mean n", "median n",
                "records flipping at n = " + " ".join(str(n) for n in ns)):
        flips.add_column(col, justify="right" if col != "model" else "left")
    for res in results:
        s = flip_summary(flip_points(res), res.max_prepends)
        fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
        flips.add_row(res.model, str(s.flipped), str(s.never), fmt(s.mean), fmt(s.median),
                      " ".join(str(c) for c in s.histogram))
    console.print(flips)
