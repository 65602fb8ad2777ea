"""One experiment, one spec: ``ExperimentSpec`` declares an experiment's name, title, figure, the paper's
claim, its family module (where ``run_<name>`` and the grids live) and its terminal chart, once; the rule
and the judge are read from ``engine.experiments.judges`` by name. The registry (``engine.experiments``)
lists ``SPECS``; every ``run_<name>`` ends with ``SPECS[name].result(...)``, which judges the rows and
stamps the result with the same title, figure, claim and rule.

Importing this module does not import torch (the family modules are imported on demand).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import UserError
from engine.experiments import judges
from engine.experiments.grids import LEVELS, Grid
from engine.experiments.results import ExperimentResult
from engine.experiments.verdict import Judgement


@dataclass(frozen=True)
class Chart:
    """How a terminal chart of the result's curves is drawn."""

    xlabel: str
    ylabel: str
    xlog: bool = False
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything said about one experiment, said once."""

    name: str
    module: str
    title: str
    figure: str
    chart: Chart
    claim: str
    uses_lm: bool = False

    @property
    def function_name(self) -> str:
        return "run_" + self.name.replace("-", "_")

    def _module(self):
        return importlib.import_module(f"engine.experiments.{self.module}")

    def function(self):
        return getattr(self._module(), self.function_name)

    def grids(self) -> dict[str, Grid]:
        return self._module().GRIDS[self.name]

    def grid(self, level: str = "quick") -> Grid:
        if level not in LEVELS:
            raise UserError(f"unknown grid level {level!r}: choose {', '.join(LEVELS)}")
        return self.grids()[level]

    @property
    def rule(self) -> str:
        """The verdict rule in words (``judges.RULES``)."""
        return judges.RULES[self.name]

    def judge(self, rows: Sequence[dict]) -> Judgement:
        """``judges.judge_<name>(rows)``."""
        return getattr(judges, "judge_" + self.name.replace("-", "_"))(rows)

    def result(self, grid: Grid, rows: list[dict], curves: dict, seconds: float,
               notes: Sequence[str] = ()) -> ExperimentResult:
        """The experiment's result: ``rows`` judged under the rule, with this spec's title, figure and claim."""
        return ExperimentResult.judged(self.name, self.title, self.claim, self.judge(rows), self.rule,
                                       grid.to_dict(), rows, curves, seconds, figure=self.figure, notes=notes)


_ACC = (0.0, 1.0)
SPECS: dict[str, ExperimentSpec] = {s.name: s for s in [
    ExperimentSpec(
        name="hijack-curves", module="hijack",
        title="Context hijacking: ES against prepended sentences, every scheme",
        figure="Fig. 2, C.1, C.3, C.4",
        chart=Chart("n prepended sentences", "ES / accuracy", ylim=_ACC),
        uses_lm=True,
        claim=("Prepending 'Do not think of {target_false}.' or a factually true negative relation sentence "
               "with the false target makes LLMs prefer the false target more often as the number of sentences "
               "n grows (efficacy score rises), while the reverse schemes with the true target raise accuracy "
               "(Sec. 3, Fig. 2, App. C).")),
    ExperimentSpec(
        name="hijack-mechanism", module="mechanism",
        title="Where the hijack happens: knockouts, restores and heads of the last position",
        figure="Sec. 5.5, Fig. 1 (causal trace beyond the paper)",
        chart=Chart("block", "mean logit(true) - logit(false)"),
        uses_lm=True,
        claim=("Sec. 5 reads hijacking as an associative memory fed misleading clues: attention at the last "
               "position gathers the context's tokens and the value path maps them to an output. If so, the false "
               "target's mentions are the clue: blocking the last position's attention to them (and only them) "
               "should undo most of the hijack, and a few heads should carry it.")),
    ExperimentSpec(
        name="hijack-repair", module="repair",
        title="What undoes the hijack: defenses chosen on half the records, scored on the other half",
        figure="beyond the paper",
        chart=Chart("alpha", "ES on the evaluation half", ylim=_ACC),
        uses_lm=True,
        claim=("The paper's associative-memory account reads the hijack as the last position's attention "
               "gathering a misleading clue from the context; it predicts that cutting that attention to the "
               "prepended clue (the attention or heads defense) undoes the hijack on records it was not tuned on, "
               "without costing the answers a clean or a true-target context gives.")),
    ExperimentSpec(
        name="value-matrix", module="value",
        title="Trained W_V vs W_V frozen at I",
        figure="Fig. 3a, C.1",
        chart=Chart("m", "accuracy", ylim=_ACC),
        claim=("Freezing the value matrix at W_V = I lowers accuracy compared with training W_V, most visibly "
               "at the shorter context length (Fig. 3a, C.1).")),
    ExperimentSpec(
        name="value-swap", module="value",
        title="Trained W_V swapped for the constructed / random-constructed one",
        figure="Fig. C.2",
        chart=Chart("m", "accuracy", ylim=_ACC),
        claim=("Replacing the trained W_V by the constructed W_V of eq. 5.1 does not lower accuracy "
               "significantly, unlike the random-constructed baseline (Fig. C.2).")),
    ExperimentSpec(
        name="value-angles", module="value",
        title="Smallest principal angle between rank-m W_V approximations",
        figure="Fig. C.3",
        chart=Chart("m", "angle (degrees)"),
        claim=("The rank-m approximation of the trained W_V has, on average, a smaller principal angle to the "
               "constructed W_V than to the random-constructed or Gaussian ones (Fig. C.3).")),
    ExperimentSpec(
        name="embedding-dim", module="embedding",
        title="Trained vs frozen W_E across the embedding dimension d",
        figure="Fig. C.4",
        chart=Chart("d", "accuracy", xlog=True, ylim=_ACC),
        claim=("Embedding training is needed when the dimension is below the vocabulary size (d < V); when d > "
               "V the embeddings can stay frozen at their Gaussian initialisation (Fig. C.4).")),
    ExperimentSpec(
        name="embedding-geometry", module="embedding",
        title="Mean ⟨W_E(t), W_E(t')⟩ against Hamming distance (eq. 5.2)",
        figure="Fig. 3b, C.5, C.6",
        chart=Chart("Hamming distance", "mean inner product"),
        claim=("In the under-parameterised regime the mean inner product of two trained embeddings falls "
               "linearly with their Hamming distance, with a larger value b_0 > b on the diagonal (eq. 5.2, "
               "Fig. 3b, C.5); with W_V = I the relation is mostly linear (Thm 3, Fig. C.6).")),
    ExperimentSpec(
        name="spectrum", module="embedding",
        title="Singular values of the trained W_E",
        figure="Fig. C.9-C.12",
        chart=Chart("index", "s_i / s_1"),
        claim=("The trained embedding matrix is approximately low rank: its spectrum shows a gap between the "
               "top (about m to m + 2) singular values and the rest (Lemma 5, Fig. C.9-C.12).")),
    ExperimentSpec(
        name="attention-cluster", module="attention",
        title="Attention on the last token's cluster",
        figure="Fig. 3c, C.7, C.8",
        chart=Chart("Hamming distance to t_L", "L x mean attention weight"),
        claim=("With cluster-structured neighbourhoods (clusters by the first k = 1 or 2 latent bits), the "
               "trained self-attention puts more weight on tokens in the same cluster as the last token, "
               "filtering out the noise (Fig. 3c, C.7, C.8).")),
    ExperimentSpec(
        name="context-mixing", module="context",
        title="Contexts mixing two outputs: misclassification against the mix ratio",
        figure="App. C.5 (Sec. 5.5)",
        chart=Chart("r (share of p(.|y2) tokens)", "rate", ylim=_ACC),
        claim=("Mixing into the context tokens drawn for another output y2 makes the trained transformer "
               "misclassify, more often as the share of such tokens grows: the synthetic analogue of context "
               "hijacking (Sec. 5.5, App. C.5).")),
    ExperimentSpec(
        name="context-length", module="context",
        title="Accuracy against context length, beside Bayes",
        figure="App. C.6",
        chart=Chart("L", "accuracy", xlog=True, ylim=_ACC),
        claim=("Longer contexts of i.i.d. samples separate the conditional distributions better, so the trained "
               "transformer's accuracy rises with the context length L (App. C.6), bounded by the Bayes-optimal "
               "accuracy.")),
    ExperimentSpec(
        name="theorem1", module="theory",
        title="Theorem 1: constructed model accuracy against context length",
        figure="Thm 1 / App. A (Thm 7)",
        chart=Chart("L", "accuracy", xlog=True, ylim=_ACC),
        claim=("Theorem 1: with ω = 1 and N(t) = all other tokens, the one-layer transformer with orthonormal "
               "embeddings, uniform attention and the constructed W_V (eq. 5.1) reaches any error ε > 0 once "
               "the context length L is large enough.")),
    ExperimentSpec(
        name="lemma2", module="theory",
        title="Lemma 2: constructed W_V (error 0) vs W_V = I (error > 0)",
        figure="Lemma 2",
        chart=Chart("L", "accuracy", xlog=True, ylim=_ACC),
        claim=("Lemma 2: with ω = 1 and the Hamming-1 neighbourhood, orthonormal embeddings with the "
               "constructed W_V have error 0, while W_V = I has error strictly above 0.")),
    ExperimentSpec(
        name="theorem3", module="theory",
        title="Theorem 3: W_V = I, ω = 1 trained embeddings linear in D_H",
        figure="Thm 3",
        chart=Chart("Hamming distance", "mean inner product"),
        claim=("Theorem 3: with ω = 1, N(t) = all other tokens and W_V = I, a one-layer transformer that "
               "minimises the cross-entropy has ⟨W_E(t), W_E(t')⟩ = −a·D_H(t, t') + b for t != t', with a > 0: "
               "trained embeddings are linear in the Hamming distance.")),
    ExperimentSpec(
        name="theorem4", module="theory",
        title="Theorem 4: eq. 5.2 embeddings, error against b_0 and L",
        figure="Thm 4 / App. A (Thm 8)",
        chart=Chart("L", "error", xlog=True, ylim=_ACC),
        claim=("Theorem 4 (informal): in Theorem 1's setting but with embeddings following eq. 5.2 (and the "
               "constructed W_V), the error can be made arbitrarily small once b_0 and the context length L are "
               "large enough.")),
    ExperimentSpec(
        name="lemma5", module="theory",
        title="Lemma 5: eq. 5.2 with b = b_0 has rank <= m + 2",
        figure="Lemma 5",
        chart=Chart("m", "rank"),
        claim=("Lemma 5: if the embeddings follow eq. 5.2 with b = b_0 and N(t) = all other tokens, then "
               "rank(W_E) <= m + 2.")),
    ExperimentSpec(
        name="lemma6", module="theory",
        title="Lemma 6: attention-score gradient, closed form vs autograd",
        figure="Lemma 6",
        chart=Chart("m", "relative error"),
        claim=("Lemma 6: with the cluster neighbourhood, the gradient of the loss with respect to the "
               "unnormalised attention score u(t, t_L) = (W_K W_E(t))ᵀ(W_Q W_E(t_L))/√d_a is ∇ℓ(f)ᵀ W_Eᵀ W_V "
               "(α_t p̂_t W_E(t) − p̂_t Σ_l p̂_{t_l} W_E(t_l)), α_t = #{l : t_l = t}.")),
]}
