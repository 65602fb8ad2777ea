"""Hijacking schemes: n sentences prepended to a CounterFact prompt (Sec. 3).

- ``not-think``: "Do not think of {target_false}." (Fig. 2a);
- ``relation``: a factually TRUE negative sentence from the relation id, e.g. P190
  "The twin city of {subject} is not {target_false}." (Fig. 2b);
- ``reverse-not-think`` / ``reverse-relation``: the same with {target_true} and, for the relation
  scheme, a positive true sentence (App. C, Figs. C.1 and C.3). They should *raise* accuracy, so
  their report metric is accuracy, P(true) > P(false), instead of the efficacy score;
- ``custom``: the user's template with ``{subject}``, ``{target_true}``, ``{target_false}``.

The prompt with n sentences is ``hijack_prefix(r, s, n) + r.text`` and the prefixes nest:
``hijack_prefix(r, s, n + 1)`` starts with ``hijack_prefix(r, s, n)``, which is what lets the
efficacy sweep reuse the keys/values of the longest prefix.
The relation template table is data: ``engine/hijack/data/relation_templates.json``.
"""

from __future__ import annotations

import copy
import json
import string
import warnings
from functools import lru_cache
from importlib import resources

from engine.errors import UserError
from engine.hijack.counterfact import FactRecord

SCHEMES: dict[str, str] = {
    "not-think": 'prepend "Do not think of {target_false}." (Fig. 2a)',
    "relation": "prepend a true negative relation sentence with {target_false} (Fig. 2b)",
    "reverse-not-think": 'prepend "Do not think of {target_true}." (App. C; raises accuracy)',
    "reverse-relation": "prepend a true positive relation sentence with {target_true} (App. C; raises accuracy)",
    "custom": "prepend your template with {subject}, {target_true} and/or {target_false}",
}
REVERSE_SCHEMES = frozenset({"reverse-not-think", "reverse-relation"})
PLACEHOLDERS = ("subject", "target_true", "target_false")
TEMPLATES_FILE = "relation_templates.json"
FALLBACK_TEMPLATE = {
    "name": "(unknown relation)",
    "negative": "{subject} is not associated with {target_false}.",
    "positive": "{subject} is associated with {target_true}.",
}


def check_scheme(scheme: str) -> str:
    """Return the scheme name normalised (stripped, lower case); an unknown one raises UserError."""
    name = str(scheme).strip().lower()
    if name not in SCHEMES:
        raise UserError(f"Unknown hijack scheme {scheme!r}; choose one of {', '.join(SCHEMES)}.")
    return name


def is_reverse(scheme: str) -> bool:
    """True for the reverse schemes, which are scored by accuracy, not efficacy."""
    return check_scheme(scheme) in REVERSE_SCHEMES


def metric_name(scheme: str) -> str:
    """``"accuracy"`` (P(true) > P(false)) for reverse schemes, else ``"efficacy"`` (P(false) > P(true))."""
    return "accuracy" if is_reverse(scheme) else "efficacy"


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, str]]:
    text = resources.files("engine.hijack.data").joinpath(TEMPLATES_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def relation_templates() -> dict[str, dict[str, str]]:
    """The relation id -> {name, negative, positive} table (a copy; safe to modify)."""
    return copy.deepcopy(_table())


def relation_template(relation_id: str) -> dict[str, str]:
    """The templates for one relation id; an unknown id warns and returns the generic fallback."""
    entry = _table().get(str(relation_id).strip().upper())
    if entry is None:
        warnings.warn(f"No relation template for {relation_id!r}; using the generic fallback "
                      f"'{FALLBACK_TEMPLATE['negative']}'.", stacklevel=2)
        return dict(FALLBACK_TEMPLATE)
    return dict(entry)


def fill_template(template: str, record: FactRecord) -> str:
    """Substitute ``{subject}``, ``{target_true}``, ``{target_false}`` (``{{``/``}}`` are literal braces).

    Only those three bare names are allowed: no positional ``{}``, attributes, indices, format
    specs or conversions, so user text can never reach anything but the three strings.
    """
    values = {"subject": record.subject, "target_true": record.target_true,
              "target_false": record.target_false}
    out: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UserError(f"The template {template!r} has an unmatched brace ({exc}).") from None
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        if field not in values or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise UserError(f"Unknown placeholder {shown} in the template; use only "
                            f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}.")
        out.append(values[field])
    return "".join(out)


def hijack_sentence(record: FactRecord, scheme: str, template: str | None = None) -> str:
    """The one sentence the scheme prepends for this record (``template`` is for ``custom`` only)."""
    name = check_scheme(scheme)
    if name == "not-think":
        return f"Do not think of {record.target_false}."
    if name == "reverse-not-think":
        return f"Do not think of {record.target_true}."
    if name == "relation":
        return fill_template(relation_template(record.relation_id)["negative"], record)
    if name == "reverse-relation":
        return fill_template(relation_template(record.relation_id)["positive"], record)
    if template is None or not template.strip():
        raise UserError("The custom scheme needs a template using {subject}, {target_true} "
                        "and/or {target_false}.")
    return fill_template(template, record).strip()


def hijack_prefix(record: FactRecord, scheme: str, n: int, template: str | None = None) -> str:
    """``(sentence + " ") * n``: the text in front of ``record.text`` for n prepends."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UserError(f"The number of prepended sentences must be an integer >= 0, not {n!r}.")
    return (hijack_sentence(record, scheme, template) + " ") * n  # built at n = 0 too: same errors


def build_prompt(record: FactRecord, scheme: str, n: int, template: str | None = None) -> str:
    """The hijacked prompt: n sentences, each followed by one space, then ``record.text``."""
    return hijack_prefix(record, scheme, n, template) + record.text


def scheme_records(records, scheme: str, record=None) -> tuple[list, str | None]:
    """The records an ES evaluation of ``scheme`` runs on, and the relation it is limited to.

    The relation schemes (Fig. 2b and its reverse, App. C) need a sentence template for the record's
    relation: with a chosen record they run on its relation, else on every record whose relation has
    a template (never on the generic fallback). Other schemes run on every record."""
    if scheme not in ("relation", "reverse-relation"):
        return list(records), None
    if record is not None and record.relation_id in relation_templates():
        return [r for r in records if r.relation_id == record.relation_id], record.relation_id
    known = relation_templates()
    return [r for r in records if r.relation_id in known], None
