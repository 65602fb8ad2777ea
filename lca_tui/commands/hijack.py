"""``lca-tui hijack``: the efficacy curve ES(n) of a hijacking scheme (Fig. 2a not-think, Fig. 2b relation).

ES(n) = fraction of CounterFact records whose false target beats the true one after n prepended
sentences; reverse schemes report accuracy (true beats false) instead. Prints a table and a
terminal chart, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub):
    from lca_tui.commands.probe import add_model_flags

    p = sub.add_parser("hijack", help="efficacy curve ES(n) of a context-hijacking scheme",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
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
    p.add_argument("--json", action="store_true",
                   help='print {"model", "scheme", "records", "curve": [{"n", "es", "p_true", "p_false"}]}')
    return p


def run(args) -> int:
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.efficacy import check_request, efficacy_curve
    from lca_tui.commands.probe import load_model

    records = load_counterfact(args.dataset, relation=args.relation, limit=args.limit, seed=args.seed)
    check_request(records, args.scheme, args.max_prepends, args.scoring, args.batch_size, args.template)
    lm = load_model(args)
    if args.json:
        result = efficacy_curve(lm, records, args.scheme, args.max_prepends, template=args.template,
                                scoring=args.scoring, batch_size=args.batch_size)
        print(json.dumps({"model": lm.name, "scheme": result.scheme, "records": result.n_records,
                          "curve": [{"n": p.n, "es": p.es, "p_true": p.p_true, "p_false": p.p_false}
                                    for p in result.curve]}))
        return 0

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    with Progress(TextColumn("scoring prompts"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("eval", total=len(records) * (args.max_prepends + 1))
        result = efficacy_curve(lm, records, args.scheme, args.max_prepends, template=args.template,
                                scoring=args.scoring, batch_size=args.batch_size,
                                progress=lambda done, total: bar.update(task, completed=done))
    _print_human(result, Console())
    return 0


def _print_human(result, console) -> None:
    import plotext as plt
    from rich.table import Table
    from rich.text import Text

    label = "ES" if result.metric == "efficacy" else "accuracy"
    table = Table()
    for col in ("n", label, "mean P(true)", "mean P(false)", "records"):
        table.add_column(col, justify="right")
    for p in result.curve:
        table.add_row(str(p.n), f"{p.es:.3f}", f"{p.p_true:.4f}", f"{p.p_false:.4f}", str(p.count))

    ns = [p.n for p in result.curve]
    plt.clear_figure()
    plt.plot(ns, [p.es for p in result.curve], marker="braille")
    plt.scatter(ns, [p.es for p in result.curve], marker="●")
    plt.ylim(0, 1)
    plt.xticks(ns)
    plt.xlabel("n prepended sentences")
    plt.title(f"{label}(n), {result.scheme}")
    plt.plotsize(min(70, max(30, console.width - 2)), 16)
    if not console.is_terminal:
        plt.theme("clear")
    console.print(Text.from_ansi(plt.build()))
    console.print(Text(f"{result.metric} vs prepended sentences: scheme {result.scheme}, model {result.model}, "
                       f"{result.n_records} records, scoring {result.scoring}"
                       + (" (cancelled: partial)" if result.cancelled else ""), style="bold"))
    console.print(table)
