"""CounterFact loading: both schemas, all file kinds, filters, and one-sentence errors."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from engine.errors import UserError
from engine.hijack.counterfact import FactRecord, load_counterfact, relation_ids
from engine.hijack.schemes import relation_templates

SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "counterfact_sample.json"

# (case_id, subject, prompt, relation, true, false) of the 5 genuine records in the shared sample
SAMPLE_EXPECTED = [
    (0, "Danielle Darrieux", "The mother tongue of {} is", "P103", "French", "English"),
    (1, "Edwin of Northumbria", "The official religion of {} is", "P140", "Christianity", "Islam"),
    (2, "Toko Yasuda", "{}, the", "P1303", "guitar", "piano"),
    (3, "Autonomous University of Madrid", "{}, which is located in", "P17", "Spain", "Sweden"),
    (4, "Lyon", "What is the twin city of {}? It is", "P190", "Beirut", "Manila"),
]
EXPECTED_RECORDS = [FactRecord(*row) for row in SAMPLE_EXPECTED]


def _flat_rows(filled: bool) -> list[dict]:
    """The sample in NeelNanda's flat schema: leading-space targets, optionally filled prompts."""
    rows = []
    for r in EXPECTED_RECORDS:
        rows.append({
            "case_id": r.case_id,
            "prompt": r.text if filled else r.prompt,
            "subject": r.subject,
            "relation_id": r.relation_id,
            "target_true": " " + r.target_true,
            "target_false": " " + r.target_false,
        })
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# --- the shared sample (ROME schema) ------------------------------------------------------------

@pytest.mark.skipif(not SAMPLE.exists(), reason="shared CounterFact sample not present")
def test_shared_rome_sample_loads_exactly():
    records = load_counterfact(str(SAMPLE))
    assert records == EXPECTED_RECORDS
    assert records[0].text == "The mother tongue of Danielle Darrieux is"
    assert records[4].text == "What is the twin city of Lyon? It is"


def test_rome_json_written_locally(tmp_path):
    rows = [{"case_id": r.case_id, "requested_rewrite": {
        "prompt": r.prompt, "relation_id": r.relation_id, "subject": r.subject,
        "target_true": {"str": r.target_true, "id": ""},
        "target_new": {"str": r.target_false, "id": ""}}} for r in EXPECTED_RECORDS]
    path = tmp_path / "counterfact.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    assert load_counterfact(str(path)) == EXPECTED_RECORDS


# --- flat schema: jsonl and parquet -------------------------------------------------------------

@pytest.mark.parametrize("filled", [False, True])
def test_flat_jsonl_matches_rome(tmp_path, filled):
    path = _write_jsonl(tmp_path / "flat.jsonl", _flat_rows(filled))
    records = load_counterfact(str(path))
    assert records == EXPECTED_RECORDS  # leading spaces stripped, filled prompts -> templates
    assert all(not r.target_true.startswith(" ") for r in records)


def test_flat_parquet_matches_rome(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = _flat_rows(filled=True)
    for row in rows:
        del row["case_id"]  # NeelNanda's set has no case_id: the row index stands in
    path = tmp_path / "flat.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert load_counterfact(str(path)) == EXPECTED_RECORDS


def test_filled_prompt_replaces_only_first_subject_occurrence(tmp_path):
    row = {"prompt": "Paris Hilton was born in", "subject": "Paris Hilton", "relation_id": "P19",
           "target_true": " New York City", "target_false": " Paris"}
    rec = load_counterfact(str(_write_jsonl(tmp_path / "one.jsonl", [row])))[0]
    assert rec.prompt == "{} was born in"
    assert (rec.target_true, rec.target_false, rec.case_id) == ("New York City", "Paris", 0)


def test_flat_relation_column_is_the_preferred_template(tmp_path):
    # the subject also appears earlier than its slot: the 'relation' column disambiguates
    row = {"prompt": "Paris, Paris is the twin city of", "subject": "Paris",
           "relation": "Paris, {} is the twin city of", "relation_id": "P190",
           "target_true": " Rome", "target_false": " Dallas"}
    rec = load_counterfact(str(_write_jsonl(tmp_path / "rel.jsonl", [row])))[0]
    assert rec.prompt == "Paris, {} is the twin city of"
    row["relation"] = "{} is somewhere else"  # does not match the prompt: first occurrence wins
    rec = load_counterfact(str(_write_jsonl(tmp_path / "rel2.jsonl", [row])))[0]
    assert rec.prompt == "{}, Paris is the twin city of"


def test_text_uses_replace_not_format():
    rec = FactRecord(7, "Lyon", "In {} (a {city}) the", "P190", "Beirut", "Manila")
    assert rec.text == "In Lyon (a {city}) the"
    assert FactRecord.from_dict(rec.to_dict()) == rec


def test_json_lines_saved_as_json(tmp_path):
    path = _write_jsonl(tmp_path / "lines.json", _flat_rows(False))
    assert load_counterfact(str(path)) == EXPECTED_RECORDS


# --- filter, shuffle, limit ---------------------------------------------------------------------

def test_relation_filter_accepts_str_list_and_commas():
    p190 = load_counterfact(relation="P190")
    assert p190 and {r.relation_id for r in p190} == {"P190"}
    both = load_counterfact(relation=["P190", "p103"])
    assert {r.relation_id for r in both} == {"P190", "P103"}
    assert load_counterfact(relation="P190, P103") == both


def test_seed_and_limit_are_deterministic():
    a = load_counterfact(seed=3, limit=20)
    b = load_counterfact(seed=3, limit=20)
    c = load_counterfact(seed=4, limit=20)
    assert a == b and len(a) == 20 and a != c
    assert load_counterfact(limit=5) == load_counterfact()[:5]  # no seed: file order
    # the shuffle happens after the filter, the limit after the shuffle
    full = load_counterfact(relation="P36", seed=9)
    assert load_counterfact(relation="P36", seed=9, limit=4) == full[:4]
    assert sorted(full, key=lambda r: r.case_id) == load_counterfact(relation="P36")


@pytest.mark.parametrize("limit", [0, -1, 2.5])
def test_bad_limit(limit):
    with pytest.raises(UserError, match="limit"):
        load_counterfact(limit=limit)


def test_unknown_relation_lists_the_ids_present():
    with pytest.raises(UserError) as err:
        load_counterfact(relation="P999")
    msg = str(err.value)
    assert "P999" in msg and "P17" in msg and "P1412" in msg


# --- errors -------------------------------------------------------------------------------------

def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(UserError, match="not found") as err:
        load_counterfact(str(path))
    assert str(path) in str(err.value)


def test_malformed_rome_record_names_file_index_and_field(tmp_path):
    rows = [
        {"case_id": 0, "requested_rewrite": {"prompt": "{} is in", "relation_id": "P17",
                                             "subject": "X", "target_true": {"str": "A"},
                                             "target_new": {"str": "B"}}},
        {"case_id": 1, "requested_rewrite": {"prompt": "{} is in", "relation_id": "P17",
                                             "subject": "Y", "target_true": {"str": "A"}}},
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_counterfact(str(path))
    msg = str(err.value)
    assert str(path) in msg and "record 1" in msg and "requested_rewrite.target_new.str" in msg


def test_malformed_flat_record_names_file_and_index(tmp_path):
    rows = _flat_rows(False)
    del rows[2]["subject"]
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UserError) as err:
        load_counterfact(str(path))
    msg = str(err.value)
    assert str(path) in msg and "record 2" in msg and "'subject'" in msg


def test_prompt_without_subject_or_braces_is_malformed(tmp_path):
    rows = _flat_rows(False)
    rows[3]["prompt"] = "Somewhere is located in"
    with pytest.raises(UserError, match="record 3"):
        load_counterfact(str(_write_jsonl(tmp_path / "x.jsonl", rows)))


def test_invalid_json_and_wrong_suffix(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(UserError, match="not valid JSON"):
        load_counterfact(str(bad))
    csv = tmp_path / "facts.csv"
    csv.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(UserError, match="expected a .json"):
        load_counterfact(str(csv))


def _fake_datasets(monkeypatch, load):
    mod = types.ModuleType("datasets")
    mod.load_dataset = load
    monkeypatch.setitem(sys.modules, "datasets", mod)


def test_unreachable_dataset_id_hints_at_local_file(monkeypatch):
    def load(name, split):
        raise ConnectionError("offline")

    _fake_datasets(monkeypatch, load)
    with pytest.raises(UserError) as err:
        load_counterfact("azhx/counterfact")
    msg = str(err.value)
    assert "azhx/counterfact" in msg and "counterfact.json" in msg


def test_dataset_id_rows_are_parsed(monkeypatch):
    calls = []

    def load(name, split):
        calls.append((name, split))
        return _flat_rows(filled=True)

    _fake_datasets(monkeypatch, load)
    assert load_counterfact("NeelNanda/counterfact-tracing") == EXPECTED_RECORDS
    assert calls == [("NeelNanda/counterfact-tracing", "train")]


# --- the built-in set ---------------------------------------------------------------------------

def test_builtin_set_size_and_integrity():
    records = load_counterfact()
    assert len(records) >= 120
    rels = relation_ids(records)
    assert len(rels) >= 10
    for rid in ["P17", "P19", "P27", "P30", "P37", "P103", "P131", "P176", "P190", "P641",
                "P1412", "P36", "P106", "P495", "P740", "P937"]:
        assert rid in rels
    pairs = [(r.subject, r.relation_id) for r in records]
    assert len(pairs) == len(set(pairs))
    assert len({r.case_id for r in records}) == len(records)
    for r in records:
        assert r.target_true != r.target_false
        assert r.prompt.count("{}") == 1 and not r.prompt.endswith(" ")
        assert r.target_true == r.target_true.strip() and r.target_false == r.target_false.strip()


def test_builtin_relations_all_have_templates():
    table = relation_templates()
    assert set(relation_ids(load_counterfact())) <= set(table)


def test_builtin_has_the_eiffel_tower():
    rec = next(r for r in load_counterfact(relation="P131") if r.subject == "The Eiffel Tower")
    assert rec.text == "The Eiffel Tower is in"  # the paper's Fig. 1 example
    assert (rec.target_true, rec.target_false) == ("Paris", "Chicago")
