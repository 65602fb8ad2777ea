"""The probe (``Prober``) in every cell of the matrix: top-k, targets, surprise, logit lens, target
lens and attention equal a plain full forward of the prompt; a second, edited prompt served partly
from the cache equals a fresh plain forward of it."""

from __future__ import annotations

import math

import pytest
import torch

from engine.hijack.lm import _final_norm
from engine.hijack.probe import ANALYSES, Prober
from tests.engine.matrix.conftest import cells, logit_scale
from tests.engine.matrix.tolerance import check, tolerance

PROMPT = "Do not think of London. The Eiffel Tower is located in the city of"
EDITED = "Do not think of London. The Eiffel Tower is located in the twin city of"  # same prefix, new end
TARGETS = [" Paris", " London", " Paris is nice"]

READS = tuple(a for a in ANALYSES if a != "attention")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def plain(lm, ids, attentions=False):
    """One forward over the whole prompt: logits (T, V) float32, hidden states, attentions."""
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True, output_attentions=attentions)
    return out.logits[0].float(), out.hidden_states, out.attentions


def plain_lens(lm, hidden):
    """Final norm then the output embedding, then the config's final soft-capping: written out here."""
    norm, head = _final_norm(lm.model), lm.model.get_output_embeddings()
    logits = head(norm(hidden)).float()
    cap = getattr(lm.model.config.get_text_config(), "final_logit_softcapping", None)
    return cap * torch.tanh(logits / cap) if cap else logits


def plain_target_logp(lm, ids, target_ids):
    with torch.inference_mode():
        lp = torch.log_softmax(lm.model(torch.tensor([ids + target_ids[:-1]])).logits[0].float(), -1)
    return sum(float(lp[len(ids) - 1 + j, t]) for j, t in enumerate(target_ids))


def compare(lm, cell, res, tol, where):
    ids = list(res.token_ids)
    logits, hidden, _ = plain(lm, ids)
    logp = torch.log_softmax(logits, -1)
    probs = logp[-1].exp()
    worst = 0.0
    # top-k: the fast ids are the plain top-k up to ties within tol, with the plain probabilities
    kth = float(torch.topk(probs, len(res.top_k)).values[-1])
    for t in res.top_k:
        assert float(probs[t.token_id]) >= kth - tol, (where, t)
        worst = max(worst, abs(t.prob - float(probs[t.token_id])), abs(t.logit - float(logits[-1, t.token_id])))
    for t in res.targets:
        from engine.hijack.probe import continuation_ids

        tids, _ = continuation_ids(lm, res.prompt, ids, t.target)
        worst = max(worst, abs(t.first_token_prob - float(probs[tids[0]])),
                    abs(math.log(t.prob) - plain_target_logp(lm, ids, tids)) / 2)
        lo = int((probs > probs[tids[0]] + tol).sum()) + 1
        hi = int((probs > probs[tids[0]] - tol).sum()) + 1
        assert lo <= t.rank <= hi, (where, t, lo, hi)
    surprise = [float("nan")] + [-float(logp[j - 1, ids[j]]) for j in range(1, len(ids))]
    assert math.isnan(res.surprise[0])
    worst = max(worst, max(abs(a - b) for a, b in zip(res.surprise[1:], surprise[1:])) / 2)
    lens = torch.log_softmax(plain_lens(lm, torch.stack([h[0, -1] for h in hidden[1:-1]])), -1)
    lens = torch.cat([lens, logp[-1][None]])
    firsts = [continuation_ids(lm, res.prompt, ids, t)[0][0] for t in res.target_lens.targets]
    worst = max(worst, float((torch.as_tensor(res.logit_lens.probs) - lens[:, firsts].exp()).abs().max()))
    tl = plain_lens(lm, torch.stack([h[0, -1] for h in hidden[1:-1]]))[:, firsts]
    tl = torch.cat([tl, logits[-1, firsts][None]])
    worst = max(worst, float((torch.as_tensor(res.target_lens.logits) - tl).abs().max()))
    check("probe", cell, worst, tol, where)


def compare_attention(lm, cell, res, tol, where):
    with lm.eager_attention():
        _, _, att = plain(lm, list(res.token_ids), attentions=True)
    want = torch.stack([a[0, :, -1].float() for a in att])
    check("probe", cell, float((torch.as_tensor(res.attention) - want).abs().max()), tol, where)


@pytest.mark.parametrize("cell", cells())
def test_probe_and_its_kv_reuse_equal_plain_forwards(cell, load_cell):
    lm = load_cell(cell)
    tol = tolerance(lm.dtype, logit_scale(lm, PROMPT))
    prober = Prober(lm)  # the read-outs but attention run in the cell's own attention implementation
    first = prober.probe(PROMPT, TARGETS, top_k=5, analyses=READS)
    assert first.reused_prefix == 0
    compare(lm, cell, first, tol, "fresh prompt")
    edited = prober.probe(EDITED, TARGETS, top_k=5, analyses=READS)
    assert edited.reused_prefix > 0  # the shared prefix came from the cache
    compare(lm, cell, edited, tol, "edited prompt, prefix from the cache")
    fresh = Prober(lm).probe(EDITED, TARGETS, top_k=5, analyses=READS)
    check("probe", cell, max(abs(a.prob - b.prob) for a, b in zip(edited.targets, fresh.targets)), tol,
          "edited prompt: cache vs fresh probe")
    # attention weights switch the probe to eager attention for the call (and back)
    att = Prober(lm)
    compare_attention(lm, cell, att.probe(PROMPT, TARGETS, analyses=ANALYSES), tol, "attention, fresh")
    compare_attention(lm, cell, att.probe(EDITED, TARGETS, analyses=ANALYSES), tol, "attention, from the cache")
    assert lm.model.config._attn_implementation == cell[2]
