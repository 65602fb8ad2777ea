"""EXPERIMENTS.md is rendered from results/, and the committed pair cannot drift."""

import json
from pathlib import Path

from engine.experiments.render import render_markdown
from engine.experiments.results import ExperimentResult, load_results, rejudge, save_result
from engine.experiments.stats import mean_ci
from engine.experiments.verdict import Judgement

ROOT = Path(__file__).resolve().parents[3]


def _result(name="lemma5", verdict="holds", level="quick"):
    j = Judgement(verdict, ("a reason with 0.123",), (mean_ci("gap", [0.1, 0.2, 0.3]),))
    return ExperimentResult.judged(name, "T", "the claim", j, "the rule", {"level": level},
                                   [{"m": 3, "x": 0.5, "x_runs": [0.4, 0.6]}], {}, 12.5, figure="Lemma 5").to_dict()


def test_save_load_and_render_from_files(tmp_path):
    p = save_result(tmp_path, _result(), {"command": "lca-tui experiment lemma5 --quick", "jobs": 2,
                                          "loadavg": [1.0, 2.0, 3.0], "machine": "test box"})
    assert p == tmp_path / "quick" / "lemma5.json"
    assert load_results(tmp_path, "quick")["lemma5"]["run"]["jobs"] == 2
    save_result(tmp_path, _result("theorem1", "does not hold", "paper"))
    text = render_markdown(tmp_path)
    assert "| `lemma5` | Lemma 5 |" in text and "**holds**" in text and "**does not hold**" in text
    assert "lca-tui experiment lemma5 --quick" in text and "test box" in text
    assert "a reason with 0.123" in text and "gap = 0.2 (95% CI" in text
    assert "x_runs" not in text                                   # per-seed lists stay in the JSON
    assert "quick grid**: holds: lemma5" in text and "paper grid**: does not hold: theorem1" in text
    assert render_markdown(tmp_path) == text                      # deterministic


def test_a_partial_paper_grid_is_flagged(tmp_path):
    from engine import experiments as E

    data = _result("value-matrix", "holds", "paper")
    data["grid"] = {**E.grid("value-matrix", "paper").to_dict(), "m": [5, 6]}
    save_result(tmp_path, data)
    text = render_markdown(tmp_path)
    assert "**Partial grid:** m = [5, 6] (the paper grid: [5, 6, 7, 8])" in text
    assert "**holds** (partial grid)" in text


def test_one_all_invocation_reports_its_elapsed_time_only_when_every_result_came_from_it(tmp_path):
    run = {"started": "2026-11-30T11:00:00+0000", "models_cached_at_start": 0, "experiments": 2}
    save_result(tmp_path, _result("lemma5", level="paper"), {"all_run": {**run, "elapsed_s": 60.0}})
    save_result(tmp_path, _result("theorem1", level="paper"), {"all_run": {**run, "elapsed_s": 1500.0}})
    text = render_markdown(tmp_path)
    assert ("All 2 ran as one `lca-tui experiment all` started 2026-11-30T11:00:00+0000: 25.0 min from start "
            "to the last result, from an empty trained-model cache.") in text
    save_result(tmp_path, _result("lemma2", level="paper"), {"command": "lca-tui experiment lemma2 --paper"})
    assert "ran as one" not in render_markdown(tmp_path)


def _committed_results(tmp_path) -> Path:
    """results/ as committed: the git-tracked files only (a grid running in the background may be adding
    untracked ones), or the folder itself outside a git checkout."""
    import shutil
    import subprocess

    try:
        out = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True)
        tracked = [line for line in out.stdout.splitlines() if line.endswith(".json")]
    except (OSError, subprocess.CalledProcessError):
        tracked = []
    if not tracked:
        return ROOT / "results"
    for rel in tracked:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    return tmp_path / "results"


def test_committed_experiments_md_is_the_rendering_of_committed_results(tmp_path):
    assert (ROOT / "results").is_dir(), "results/ is committed with the quick (and paper) grid results"
    results = _committed_results(tmp_path)
    for f in results.glob("*/*.json"):
        data = json.loads(f.read_text())
        assert rejudge(data)["verdict"] == data["verdict"], f   # every saved verdict is its rows' judgement
    assert (ROOT / "EXPERIMENTS.md").read_text(encoding="utf-8") == render_markdown(results)


def test_rule_changes_are_listed_with_the_old_rule_and_old_and_new_verdicts(tmp_path):
    save_result(tmp_path, _result("lemma5", "inconclusive", "paper"))
    assert "Rule changes after results existed" not in render_markdown(tmp_path)     # none recorded
    (tmp_path / "rule-changes.json").write_text(json.dumps([
        {"experiment": "lemma5", "date": "2026-12-02", "why": "the exact rank.", "old_rule": "rank <= m + 2",
         "old_verdicts": {"paper": "holds", "quick": "holds"}, "rows": "rerun"}]), encoding="utf-8")
    text = render_markdown(tmp_path)
    assert "## Rule changes after results existed" in text
    assert "- **`lemma5`** (2026-12-02; rerun). the exact rank. Verdicts (old → now): paper: holds → " \
           "inconclusive; quick: holds → not run." in text
    assert "*Old rule:* rank <= m + 2" in text
    # the experiment's own prose (what the section must say besides its numbers) is rendered too
    assert "**Exact rank.**" in text
    assert "rule-changes" not in load_results(tmp_path, "paper")          # not taken for a result
