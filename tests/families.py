"""Tiny random models of every family the project claims (DESIGN.md, "Test matrix"), and the tiny
byte-level BPE tokenizer they share with ``tests/conftest.py: make_tiny_lm``.

``make_family(path, family)`` saves a model of a few thousand parameters (hidden 32, 2-3 blocks, a
few ms per forward on one CPU thread) whose config exercises what makes the family different:
grouped-query attention (``llama``), multi-head attention (``llama2``), a sliding window (``mistral``,
``gemma2``, ``gemma3``; larger than any test sequence, so cached prefixes stay exact), qkv biases
(``qwen2``), Gemma's (1 + w) RMSNorm and scaled embeddings (``gemma``), attention and final-logit
soft-capping with alternating sliding layers (``gemma2``), learned positions and Conv1D (``gpt2``),
partial rotary embeddings and the parallel residual (``gptneox``).
"""

from __future__ import annotations

CORPUS = ("The Eiffel Tower is located in the city of Paris. Do not think of Chicago. "
          "The mother tongue of Danielle Darrieux is French. Toko Yasuda plays the guitar and piano. "
          "The twin city of Lyon is not Beijing. Apple A5 was created by Google. Rome London Berlin.")

#: family -> (builds a BOS-prefixed tokenizer, what the config exercises)
FAMILIES = {
    "llama": (True, "GQA: 4 heads, 2 kv heads"),
    "llama2": (True, "MHA: kv heads = heads"),
    "mistral": (True, "sliding window 128 > test lengths"),
    "qwen2": (False, "qkv bias, no BOS"),
    "gemma": (True, "Gemma-1: (1 + w) RMSNorm, scaled embeddings, MQA"),
    "gemma2": (True, "attn and final-logit soft-capping, alternating sliding layers"),
    "gemma3": (True, "Gemma3ForCausalLM, sliding layers, q/k norms"),
    "gpt2": (False, "learned positions, Conv1D, no BOS"),
    "gptneox": (False, "parallel residual, rotary_pct 0.5, no BOS"),
}

MAX_POSITIONS = 256
SLIDING_WINDOW = 128  # every test sequence is shorter (prepare() refuses longer ones)


def tiny_tokenizer(bos: bool = True, vocab_size: int = 320):
    """A byte-level BPE tokenizer trained on the fly on ``CORPUS`` (``<s>`` = 0 added in front of
    every prompt with ``bos``, ``</s>`` = 1), as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 4, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def _model(family: str, vocab: int):
    import transformers as tf

    common = dict(vocab_size=vocab, bos_token_id=0, eos_token_id=1, pad_token_id=1, initializer_range=0.3)
    llama_like = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=MAX_POSITIONS, **common)
    if family == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(num_key_value_heads=2, **llama_like))
    if family == "llama2":
        return tf.LlamaForCausalLM(tf.LlamaConfig(num_key_value_heads=4, **llama_like))
    if family == "mistral":
        return tf.MistralForCausalLM(tf.MistralConfig(num_key_value_heads=2, sliding_window=SLIDING_WINDOW,
                                                      **llama_like))
    if family == "qwen2":  # Qwen2's q/k/v projections carry a bias
        return tf.Qwen2ForCausalLM(tf.Qwen2Config(num_key_value_heads=2, **llama_like))
    if family == "gemma":
        return tf.GemmaForCausalLM(tf.GemmaConfig(num_key_value_heads=1, head_dim=8, **llama_like))
    if family == "gemma2":  # small caps, so the soft-capping bends these random logits
        return tf.Gemma2ForCausalLM(tf.Gemma2Config(
            num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=SLIDING_WINDOW,
            attn_logit_softcapping=4.0, final_logit_softcapping=6.0,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            **{**llama_like, "num_hidden_layers": 3}))
    if family == "gemma3":
        return tf.Gemma3ForCausalLM(tf.Gemma3TextConfig(
            num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=SLIDING_WINDOW,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            **{**llama_like, "num_hidden_layers": 3}))
    if family == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=MAX_POSITIONS,
                                                **common))
    if family == "gptneox":
        return tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=MAX_POSITIONS, rotary_pct=0.5, use_parallel_residual=True, **common))
    raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILIES)}")


def make_family(path, family: str, seed: int = 0):
    """Save a tiny random model of ``family`` (``FAMILIES``) and its tokenizer into ``path``; returns ``path``."""
    import torch

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILIES)}")
    tok = tiny_tokenizer(bos=FAMILIES[family][0])
    torch.manual_seed(seed)
    model = _model(family, len(tok))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
