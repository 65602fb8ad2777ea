"""hijack-curves: shape on a tiny random LM; direction on the embedded SmolLM2 (slow)."""

import pytest

from engine import experiments as E
from engine.errors import UserError

SCHEMES = ["not-think", "relation", "reverse-not-think", "reverse-relation"]


def test_hijack_curves_shape_on_tiny_model(tiny_lm_dir):
    g = E.grid("hijack-curves", "tiny").replace(models=(str(tiny_lm_dir),), relations=("P190", "P103"))
    d = E.get("hijack-curves").function()(g).to_dict()
    N = g["max_prepends"]
    pooled = [r for r in d["rows"] if r["relation"] == "all"]
    assert [r["scheme"] for r in pooled] == SCHEMES
    assert len(d["rows"]) == len(SCHEMES) * 3  # two relations + the pooled row, per scheme
    for r in pooled:
        assert r["records"] == 2 * g["limit"]
        assert all(0.0 <= r[f"n={n}"] <= 1.0 for n in range(N + 1))
        assert r["metric"] == ("accuracy" if r["scheme"].startswith("reverse") else "efficacy")
        assert 0.0 < r["sign_p"] <= 1.0
    assert set(d["curves"]) == {f"{tiny_lm_dir} {s}" for s in SCHEMES}
    assert d["curves"][f"{tiny_lm_dir} not-think"]["x"] == list(range(N + 1))
    assert d["verdict"] in ("holds", "does not hold", "inconclusive")


def test_hijack_curves_rejects_custom_scheme(tiny_lm_dir):
    g = E.grid("hijack-curves", "tiny").replace(models=(str(tiny_lm_dir),), schemes=("custom",))
    with pytest.raises(UserError, match="custom"):
        E.get("hijack-curves").function()(g)


@pytest.mark.slow
def test_hijack_curves_embedded_model_is_hijacked(smollm):
    g = E.grid("hijack-curves", "tiny").replace(relations=("P190",), limit=6, max_prepends=2,
                                                 schemes=("not-think", "relation"))
    d = E.get("hijack-curves").function()(g).to_dict()
    for r in (r for r in d["rows"] if r["relation"] == "all"):
        assert r["n=2"] > r["n=0"], r
