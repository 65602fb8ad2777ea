"""Attention on the last token's cluster (tiny grid)."""

from engine import experiments as E


def test_attention_cluster_prefers_the_last_tokens_cluster():
    d = E.run("attention-cluster", "tiny").to_dict()
    (row,) = d["rows"]
    assert row["k"] == 1
    assert row["ratio"] > 1.2 and row["ratio"] > row["ratio_init"]
    assert 0.5 < row["ratio_init"] < 2.0       # the untrained model has no strong preference
    assert 0 <= row["mass_same"] <= 1 and row["map_same"] > row["map_other"]
    m = E.grid("attention-cluster", "tiny")["m"]
    assert len(d["curves"]["trained k=1"]["x"]) == m + 1
    assert d["verdict"] == "holds"
