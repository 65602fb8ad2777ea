"""Shared fixtures: the real embedded model (converted once per run) and a tiny random LM folder."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _own_user_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own sessions folder and settings folder, so no test reads or writes the
    user's (``last.json``, settings, keymap), and no earlier shared trained-model cache or job store is used."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("LCA_TUI_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("LCA_TUI_STORE", str(base / "jobs"))  # the job store (engine/jobstore.py)
    monkeypatch.delenv("LCA_TUI_TRAIN_CACHE", raising=False)


@pytest.fixture(scope="session")
def smollm(tmp_path_factory):
    """The embedded SmolLM2-135M-Instruct, converted from its GGUF into a fresh cache dir once."""
    from engine.hijack.lm import load_lm

    old = os.environ.get("LCA_TUI_CACHE_DIR")
    os.environ["LCA_TUI_CACHE_DIR"] = str(tmp_path_factory.mktemp("lca-cache"))
    try:
        yield load_lm(None, device="cpu")
    finally:
        if old is None:
            os.environ.pop("LCA_TUI_CACHE_DIR", None)
        else:
            os.environ["LCA_TUI_CACHE_DIR"] = old


def make_tiny_lm(path, arch: str = "llama", max_positions: int = 128, seed: int = 0):
    """Save a tiny random causal LM (llama: RoPE + BOS; gpt2: learned positions, no BOS) and a
    byte-level BPE tokenizer trained on the fly (``tests.families.tiny_tokenizer``) into ``path``;
    returns ``path``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from tests.families import tiny_tokenizer

    fast = tiny_tokenizer(bos=arch == "llama")
    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_positions,
                          bos_token_id=0, eos_token_id=1, initializer_range=0.3)
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(vocab_size=len(fast), n_embd=32, n_layer=2, n_head=2, n_positions=max_positions,
                         bos_token_id=0, eos_token_id=1, initializer_range=0.3)
        model = GPT2LMHeadModel(cfg)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    """Folder of a tiny random Llama-architecture model (window 128 tokens)."""
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """Folder of a tiny random GPT-2 (absolute positions, no BOS)."""
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory):
    """``family_dir(family)``: the folder of a tiny random model of that family
    (``tests.families.make_family``), saved once per run."""
    from tests.families import make_family

    made: dict = {}

    def get(family: str):
        if family not in made:
            made[family] = make_family(tmp_path_factory.mktemp(f"family-{family}"), family)
        return made[family]

    return get


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matrices gain nothing from threads, and on shared cores two threads spin-wait."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_LOADED: dict = {}


@pytest.fixture(scope="session")
def load_cell(family_dir):
    """``load_cell((family, dtype, attention))`` -> the loaded tiny ``LanguageModel`` of that test-matrix cell
    (``tests.engine.matrix.conftest.cells``), cached per run."""
    from engine.hijack.lm import load_lm

    def get(cell):
        if cell not in _LOADED:
            family, dtype, attn = cell
            _LOADED[cell] = load_lm(str(family_dir(family)), device="cpu", dtype=dtype, attn_implementation=attn)
        return _LOADED[cell]

    return get
