"""The causal trace's measures by name: one table (as TransformerLens' ``get_act_name`` is for hook
points) that the trace's JSON, the job store, the Trace view, the report, the ``hijack-mechanism``
experiment and the CLI read. Adding a per-block measure is one entry in ``LAYER_MEASURES``.

A per-block measure is an intervention at the last position of the hijacked prompt, one per block
(``engine.hijack.trace``): a ``restore`` of the clean run's ``resid_post`` / ``attn_out`` /
``mlp_out`` there, or a ``knockout`` variant (the last position may not attend to the prepended
tokens: all of them, the false target's mentions, the rest; in one block or a window of blocks).
Each intervention row of a trace carries a ``Label`` (kind, variant, block, position or head), and
the measured rows are scattered by label, never by their order.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Restore kinds: the block's output (resid_post), its attention output, its MLP output.
RESTORE_KINDS = ("resid", "attn", "mlp")
#: Knockout variants: which prepended tokens (all, the false target's mentions, the rest), in one
#: block or in ``window`` blocks centred on it.
KNOCKOUTS = ("all", "window", "mentions", "mentions_window", "rest", "rest_window")


@dataclass(frozen=True)
class Label:
    """Which intervention a batch row carries: ``kind`` "restore" (``variant`` a restore kind,
    ``index`` the position's index in ``Pair.positions``), "knockout" (``variant`` a knockout
    variant) or "head" (``variant`` the ablation, ``index`` the head), at block ``block``."""

    kind: str
    variant: str
    block: int
    index: int = -1


@dataclass(frozen=True)
class LayerMeasure:
    """One per-block measure: its JSON name, what it is (kind, variant) and how it is shown."""

    name: str  # the JSON key in each ``layers`` entry, the job store's and the experiment's name
    kind: str  # "restore" (at the last position) | "knockout"
    variant: str  # a restore kind or a knockout variant
    label: str  # short, for a chart legend or a table column
    title: str  # long, for the report

    def label_at(self, block: int, last: int) -> Label:
        """The row label of this measure at ``block`` (``last``: the last position's index)."""
        return Label(self.kind, self.variant, block, last if self.kind == "restore" else -1)


def _knockout(variant: str, label: str, title: str) -> LayerMeasure:
    return LayerMeasure("knockout" if variant == "all" else f"knockout_{variant}", "knockout", variant, label, title)


LAYER_MEASURES: tuple[LayerMeasure, ...] = (
    LayerMeasure("restore_last", "restore", "resid", "restore last", "restore_last (residual stream)"),
    LayerMeasure("restore_attn_last", "restore", "attn", "restore attn", "restore_last (attention output)"),
    LayerMeasure("restore_mlp_last", "restore", "mlp", "restore mlp", "restore_last (MLP output)"),
    _knockout("all", "knockout all", "knockout: all prepended"),
    _knockout("window", "all ±w", "knockout: all prepended, window"),
    _knockout("mentions", "mentions", "knockout: mentions"),
    _knockout("mentions_window", "mentions ±w", "knockout: mentions, window"),
    _knockout("rest", "rest", "knockout: the rest"),
    _knockout("rest_window", "rest ±w", "knockout: the rest, window"),
)
BY_NAME = {m.name: m for m in LAYER_MEASURES}
NAMES = tuple(m.name for m in LAYER_MEASURES)

RESTORE_LAST = BY_NAME["restore_last"]
KNOCKOUT = BY_NAME["knockout"]
KNOCKOUT_WINDOW = BY_NAME["knockout_window"]
KNOCKOUT_MENTIONS = BY_NAME["knockout_mentions"]
MENTIONS_WINDOW = BY_NAME["knockout_mentions_window"]
REST_WINDOW = BY_NAME["knockout_rest_window"]

#: The curves every view of a trace draws (the Trace view, the report, the CLI's tables).
CURVES = (RESTORE_LAST, KNOCKOUT, MENTIONS_WINDOW, REST_WINDOW)
#: The measures ``hijack-mechanism`` evaluates at a block chosen on the even records; the rule reads
#: the first (``engine.experiments.judges``), the notes quote the second.
RULE_MEASURES = (MENTIONS_WINDOW, REST_WINDOW, KNOCKOUT_WINDOW, RESTORE_LAST)


def knockout_measure(variant: str) -> LayerMeasure:
    """The measure of a knockout variant (``KNOCKOUTS``)."""
    return next(m for m in LAYER_MEASURES if m.kind == "knockout" and m.variant == variant)


def restore_measure(kind: str) -> LayerMeasure:
    """The last-position measure of a restore kind (``RESTORE_KINDS``)."""
    return next(m for m in LAYER_MEASURES if m.kind == "restore" and m.variant == kind)
