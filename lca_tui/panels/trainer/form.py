"""The trainer form's fields and what the default recipe fills into them (no UI here)."""

from __future__ import annotations

#: Form fields in display order (flat RunConfig names) with their labels.
FORM_FIELDS = [
    ("m", "m (bits, V = 2^m)"), ("L", "L (context length)"), ("omega", "ω (signal fraction)"),
    ("beta", "β (temperature)"), ("neighborhood", "N(z*): all | hamming1 | cluster:k"),
    ("d", "d (embedding dim)"), ("d_a", "d_a (head dim)"), ("freeze_value", "W_V = I frozen (true/false)"),
    ("freeze_embedding", "W_E frozen (true/false)"), ("uniform_attention", "uniform attention (true/false)"),
    ("lr", "learning rate"), ("schedule", "schedule: constant | cosine | wsd"), ("warmup", "warm-up steps"),
    ("weight_decay", "weight decay"), ("beta1", "AdamW β1"), ("beta2", "AdamW β2"),
    ("batch_size", "batch size"), ("steps", "steps"), ("eval_every", "eval every"),
    ("eval_size", "eval samples"), ("train_size", "train set size (0 = fresh)"), ("seed", "seed"),
    ("device", "device: auto | cpu | cuda"),
]
#: Fields the default recipe fills (``recipe_config``): they follow m and L until edited. A field
#: comes after those it depends on (d_a on d; warm-up and eval every on steps).
TUNING = ("d", "d_a", "steps", "warmup", "eval_every", "lr", "schedule", "weight_decay", "beta2", "batch_size")


def shown(value) -> str:
    """A value as the form shows it (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def recipe_values(texts: dict[str, str], edited: set[str]) -> dict | None:
    """The recipe's values for the tuning fields not in ``edited``, given the form's texts (m, L and
    the edited fields that the recipe depends on: d sets d_a; steps sets warm-up and eval every):
    exactly what ``recipe_config`` of the form fills in. None while m or L is invalid."""
    from engine.errors import ConfigError
    from engine.lca.config import recipe_config

    given = {}
    try:
        given = {"m": int(texts["m"]), "L": int(texts["L"])}
        for name in ("d", "steps"):  # edited values the recipe's other fields depend on
            if name in edited:
                try:
                    given[name] = int(texts[name])
                except ValueError:
                    pass
        flat = recipe_config(given).flat()
    except (ValueError, ConfigError):
        try:  # an invalid edited d / steps: the recipe for m and L alone
            flat = recipe_config({"m": given["m"], "L": given["L"]}).flat()
        except (KeyError, ValueError, ConfigError):
            return None
    return {name: flat[name] for name in TUNING if name not in edited}


def edited_fields(flat: dict) -> set[str]:
    """The tuning fields of a run's settings that count as edited: those the recipe (for this m, L
    and the other edited fields) would give another value."""
    from engine.lca.config import recipe_config

    fixed = {k: v for k, v in flat.items() if k not in TUNING}
    edited: set[str] = set()
    for name in TUNING:  # in dependency order: d before d_a, steps before warm-up
        if name in flat and flat[name] != recipe_config({**fixed, **{k: flat[k] for k in edited}}).flat()[name]:
            edited.add(name)
    return edited
