"""``lca-tui schemes``: list the hijack schemes (Sec. 3, Fig. 2) and the relation template table."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "schemes", help="list hijack schemes and relation templates",
        description="List the context-hijacking schemes and the true negative/positive sentence "
                    "templates used for every CounterFact relation id.")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object {"schemes": {...}, "relations": {...}}')
    return p


def run(args: argparse.Namespace) -> int:
    from engine.hijack.schemes import SCHEMES, metric_name, relation_templates

    relations = relation_templates()
    if args.json:
        print(json.dumps({"schemes": SCHEMES, "relations": relations}, ensure_ascii=False))
        return 0

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    schemes = Table(title="Hijack schemes", title_justify="left")
    schemes.add_column("scheme", style="bold", no_wrap=True)
    schemes.add_column("metric", no_wrap=True)
    schemes.add_column("description")
    for name, desc in SCHEMES.items():
        schemes.add_row(name, metric_name(name), Text(desc))
    console.print(schemes)

    table = Table(title="Relation templates (relation / reverse-relation)", title_justify="left")
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("name")
    table.add_column("negative (relation)")
    table.add_column("positive (reverse-relation)")
    for rid, entry in relations.items():
        table.add_row(rid, *(Text(entry[k]) for k in ("name", "negative", "positive")))
    console.print(table)
    return 0
