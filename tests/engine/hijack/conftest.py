"""Hijack fixtures: a tiny model with a SentencePiece-style tokenizer (legacy Llama-2 dummy prefix
space), a tiny sliding-window Gemma-3, and the real embedded Gemma-3-270M (slow)."""

from __future__ import annotations

import pytest

SP_CORPUS = ("The Eiffel Tower is located in the city of Paris. Do not think of Chicago. "
             "The mother tongue of Danielle Darrieux is French. Paris Paris Chicago New York. "
             "The twin city of Lyon is not Beijing. Toko Yasuda plays the guitar and piano.")


def make_sp_tokenizer():
    """A SentencePiece-style BPE tokenizer built offline as Llama-2's legacy tokenizer.json is:
    normalizer = prepend '▁' + spaces to '▁' (the dummy prefix space), no pre-tokenizer, BOS added."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    # Train on '▁'-prefixed words (SentencePiece never merges across a word boundary) ...
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator([SP_CORPUS] * 8, trainer)
    # ... then encode like Llama-2's tokenizer.json: the normalised text as one piece.
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="session")
def sp_lm_dir(tmp_path_factory):
    """A tiny random Llama with the SentencePiece-style tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-sp-llama")
    fast = make_sp_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      bos_token_id=1, eos_token_id=2, initializer_range=0.3)
    LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory, tiny_lm_dir):
    """A tiny random Gemma-3 (two sliding-window layers of 40 tokens, one global layer)."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    path = tmp_path_factory.mktemp("tiny-gemma3")
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                           sliding_window=40, max_position_embeddings=128, bos_token_id=0, eos_token_id=1,
                           pad_token_id=1, initializer_range=0.3,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    Gemma3ForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def gemma(smollm):
    """The embedded Gemma-3-270M, converted (assembled from its chunk packages) into the same fresh
    cache dir as ``smollm`` once per run."""
    from engine.hijack.lm import load_lm

    return load_lm("gemma3-270m", device="cpu")
