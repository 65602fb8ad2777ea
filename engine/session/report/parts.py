"""The report's parts, shared by its sections (the leaf of ``engine.session.report``'s builders): the
``section`` skeleton every section is built on, tables of records, a chart's points, short model
names, a pinned screenshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.session.report.document import Block, Screenshot, Section, Table
from engine.session.report.sanitize import sanitize_svg, standalone
from engine.session.report.values import num

MAX_TABLE_ROWS = 200


def section(key: str, title: str, items: Sequence, block: Callable[..., Block], *, empty: str, intro: str = "",
            overview: Callable[[Sequence], Block] | None = None, catch: str | None = None,
            problems: list[str] | None = None) -> Section:
    """A section of one block per item (``block(item)``), after ``overview(items)`` when given; with no
    items, just ``empty`` as its intro. ``catch``: an item whose data do not fit (TypeError, ValueError,
    AttributeError) is left out and named in ``problems`` as ``<catch>/<id>: why``."""
    sec = Section(key, title)
    if not items:
        sec.intro = empty
        return sec
    sec.intro = intro
    if overview is not None:
        sec.blocks.append(overview(items))
    for it in items:
        if catch is None:
            sec.blocks.append(block(it))
            continue
        try:
            sec.blocks.append(block(it))
        except (TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{catch}/{it.id}: {exc}")
    return sec


def obj(d) -> dict:
    """``d`` when it is a dict, else an empty one (a malformed entry reads as missing)."""
    return d if isinstance(d, dict) else {}


def xy(points: list, xkey: str, ykey: str) -> tuple[list, list]:
    """(xs, ys) of the points (dicts) whose x is a finite number; a y that is not reads as missing."""
    xs, ys = [], []
    for p in points:
        if isinstance(p, dict) and num(p.get(xkey)) is not None:
            xs.append(p[xkey])
            ys.append(num(p.get(ykey)))
    return xs, ys


def short_model(model) -> str:
    """A model's name, cut to its last path part when long."""
    s = str(model or "?")
    return s.rstrip("/").rsplit("/", 1)[-1] if len(s) > 32 else s


def records_table(records: Sequence[dict], keys: Sequence[str] | None = None,
                  columns: Sequence[str] | None = None, caption: str = "") -> Table:
    """One row per record (dict), one column per key (default: every key met, in order), headed by
    ``columns`` (default: the keys); at most ``MAX_TABLE_ROWS`` rows, the rest counted in a note.
    Finite-number cells are kept as numbers (NaN/inf read as missing)."""
    records = [r for r in records if isinstance(r, dict)]
    if keys is None:
        keys = []
        for r in records:
            keys.extend(k for k in r if k not in keys)
    keys = list(keys)

    def cell(v):
        if isinstance(v, float):
            return num(v)
        return v

    rows = [[cell(r.get(k)) for k in keys] for r in records]
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        rows, note = rows[:MAX_TABLE_ROWS], f"{len(rows) - MAX_TABLE_ROWS} more rows not shown"
    return Table(list(columns) if columns is not None else keys, rows, caption=caption, note=note)


def screenshot(block: Block, it, what: str, folder: str, problems: list[str]) -> None:
    """The panel's screenshot pinned with ``it`` (its ``svg``), sanitised, added to ``block``; an SVG
    that cannot be made safe is named in ``problems`` instead."""
    svg = it.data.get("svg")
    if not svg:
        return
    try:
        block.parts.append(Screenshot(f"Panel when pinned — {what} {it.id}", standalone(sanitize_svg(svg))))
    except ValueError as exc:
        problems.append(f"{folder}/{it.path.name}: screenshot not shown ({exc})")
