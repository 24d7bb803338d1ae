"""textgen_env.generation: the KV-cached sampler equals a plain loop without cache; the stop rules; the samplers."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import textgen_env
from textgen_env import TextGenEnv
from textgen_env.generation import (
    KVSampler,
    LMWriter,
    StopRules,
    generate,
    sample_tokens,
    sample_tokens_per_row,
)

PROMPTS = ["the movie was", "i think it was", "it", "the story is very", "my friend said that the film"]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny):
    """The tiny model in float64 (cached and uncached logits agree to ~1e-15), sharper and fond of EOS, so that
    completions end by each rule."""
    model, tokenizer = tiny
    model = copy.deepcopy(model).double()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(2.0)
        model.get_output_embeddings().weight[tokenizer.eos_token_id].mul_(6.0)
    return model, tokenizer


def _reference_generate(model, tokenizer, prompts, rules, *, temperature, generator, row_generators, banned):
    """The naive loop: every step a full forward (no cache) over each unfinished row's prompt + completion."""
    vocab = len(tokenizer)
    completions: list[list[int]] = [[] for _ in prompts]
    reasons: list[str | None] = [None] * len(prompts)
    while any(r is None for r in reasons):
        logits = torch.zeros((len(prompts), vocab), dtype=torch.float32)  # (B, V) finished rows: anything
        for row, prompt in enumerate(prompts):
            if reasons[row] is None:
                ids = torch.tensor([prompt + completions[row]])  # (1, T)
                with torch.no_grad():
                    logits[row] = model(input_ids=ids).logits[0, -1, :vocab].float()
        logits[:, banned] = -torch.inf
        if row_generators is not None:
            chosen = sample_tokens_per_row(logits, row_generators, temperature=temperature)
        else:
            chosen = sample_tokens(logits, temperature=temperature, generator=generator)
        for row, token in enumerate(chosen.tolist()):
            if reasons[row] is None:
                completions[row].append(token)
                text = tokenizer.decode(completions[row], skip_special_tokens=True)
                if token == rules.eos_token_id:
                    reasons[row] = "eos"
                elif any(s in text for s in rules.stop_strings):
                    reasons[row] = "stop_string"
                elif len(completions[row]) == rules.max_new_tokens:
                    reasons[row] = "max_new_tokens"
    return completions, reasons


SAMPLERS = [
    ("greedy", 0.0, "batch"),
    ("sampled", 1.0, "batch"),
    ("sampled-hot", 1.7, "batch"),
    ("per-row", 1.0, "rows"),
    ("per-row-cool", 0.6, "rows"),
]


@pytest.mark.parametrize("hold_finished", [True, False], ids=["hold", "feed"])
@pytest.mark.parametrize(("name", "temperature", "draws"), SAMPLERS, ids=[s[0] for s in SAMPLERS])
def test_generate_equals_a_loop_without_cache(model_and_tokenizer, name, temperature, draws, hold_finished):
    model, tokenizer = model_and_tokenizer
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS] * 3  # (15 rows)
    rules = StopRules(max_new_tokens=7, eos_token_id=tokenizer.eos_token_id, stop_strings=("great", "the"))
    banned = [tokenizer.pad_token_id] if draws == "rows" else []
    outcomes = []
    for run in ("cached", "reference"):
        generator = torch.Generator().manual_seed(11) if draws == "batch" else None
        rows = [torch.Generator().manual_seed(100 + i % 4) for i in range(len(prompts))] if draws == "rows" else None
        if run == "cached":
            completions = generate(
                model,
                prompts,
                rules,
                vocab_size=len(tokenizer),
                temperature=temperature,
                generator=generator,
                row_generators=rows,
                banned_tokens=banned,
                decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
                hold_finished=hold_finished,
            )
            outcomes.append(([c.tokens for c in completions], [c.stop_reason for c in completions]))
        else:
            outcomes.append(
                _reference_generate(
                    model,
                    tokenizer,
                    prompts,
                    rules,
                    temperature=temperature,
                    generator=generator,
                    row_generators=rows,
                    banned=banned,
                )
            )
    assert outcomes[0] == outcomes[1]
    if temperature > 0:  # the case means something: every rule ends some completion
        assert set(outcomes[0][1]) == {"eos", "stop_string", "max_new_tokens"}


RULES = StopRules(max_new_tokens=3, eos_token_id=2, stop_strings=("!",))
STOP_CASES = [
    ("running", [5], "good", None),
    ("eos", [5, 2], "good", "eos"),
    ("eos-before-length", [5, 6, 2], "good", "eos"),
    ("eos-before-string", [5, 2], "good!", "eos"),
    ("string", [5, 6], "good!", "stop_string"),
    ("string-before-length", [5, 6, 7], "a!", "stop_string"),
    ("length", [5, 6, 7], "good", "max_new_tokens"),
]


@pytest.mark.parametrize(("name", "tokens", "text", "expected"), STOP_CASES, ids=[c[0] for c in STOP_CASES])
def test_stop_rules_name_the_first_rule_that_holds(name, tokens, text, expected):
    assert RULES.reason(tokens, text) == expected


def test_env_config_gives_the_rules_and_eos_is_optional():
    from textgen_env.config import TextGenConfig

    config = TextGenConfig(max_new_tokens=4, stop_strings="!", stop_on_eos=False)
    assert config.stop_rules(2) == StopRules(max_new_tokens=4, eos_token_id=None, stop_strings=("!",))
    assert config.stop_rules(2).reason([2], "") is None


@pytest.mark.parametrize("stop_on_eos", [True, False], ids=["eos", "no-eos"])
def test_evaluation_completions_end_where_the_env_ends_them(tiny, model_and_tokenizer, stop_on_eos):
    """generate_completions and the env apply one set of rules: replaying a completion ends the episode at its last
    token, with the reason the generation gave."""
    from agents.evaluation import generate_completions
    from agents.policy import LMPolicy

    model, tokenizer = tiny
    settings = dict(
        model=model, tokenizer=tokenizer, max_new_tokens=6, stop_strings=["great", "."], stop_on_eos=stop_on_eos
    )
    vec = textgen_env.TextGenVectorEnv(num_envs=1, prompts=PROMPTS, **settings)
    policy = LMPolicy(copy.deepcopy(model_and_tokenizer[0]).float(), tokenizer, value_head=False)
    pairs = generate_completions(policy, vec, PROMPTS * 4, seed=5, batch_size=7)
    ends = set()
    for prompt, (_, completion) in zip(PROMPTS * 4, pairs):
        env = TextGenEnv(prompts=[prompt], **settings)
        env.reset(seed=0)
        for i, token in enumerate(completion):
            _, _, terminated, _, info = env.step(token)
            assert terminated == (i == len(completion) - 1)
        ends.add(info["stop_reason"])
    assert ends == ({"eos", "stop_string", "max_new_tokens"} if stop_on_eos else {"stop_string", "max_new_tokens"})


def test_writer_rows_do_not_depend_on_their_batch(model_and_tokenizer):
    """A row's text depends on its prompt and its generator only, so env slots batch together."""
    model, tokenizer = model_and_tokenizer
    writer = LMWriter(model, tokenizer, temperature=0.9)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
    together = writer.sample(prompts, 6, [torch.Generator().manual_seed(i) for i in range(len(prompts))])
    alone = [writer.sample([p], 6, [torch.Generator().manual_seed(i)])[0] for i, p in enumerate(prompts)]
    assert together == alone and len(set(together)) > 1
    assert tokenizer.eos_token not in "".join(together)


@pytest.mark.parametrize("per_row", [False, True], ids=["inverse-cdf", "gumbel-max"])
def test_samplers_draw_from_the_softmax(per_row):
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -torch.inf]]).repeat(20_000, 1)  # (N, 5)
    generator = torch.Generator().manual_seed(0)
    if per_row:
        tokens = sample_tokens_per_row(logits, [generator] * len(logits), temperature=0.8)
    else:
        tokens = sample_tokens(logits, temperature=0.8, generator=generator)
    frequencies = torch.bincount(tokens, minlength=5).double() / len(tokens)
    expected = torch.softmax(logits[0].double() / 0.8, dim=-1)
    assert torch.allclose(frequencies, expected, atol=0.012) and frequencies[4] == 0


def test_agents_sample_with_the_env_sampler():
    import agents.sampling

    assert agents.sampling.sample_tokens is sample_tokens


def test_errors(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    with pytest.raises(ValueError, match=r"Expected max_new_tokens to be an int >= 1, got 0"):
        StopRules(max_new_tokens=0)
    with pytest.raises(ValueError, match=r"Expected the decoded text of the completion with stop_strings set"):
        RULES.reason([5])
    with pytest.raises(ValueError, match=r"Expected decode= to match the stop strings against the text, got None"):
        generate(model, [[5]], RULES, vocab_size=len(tokenizer))
    with pytest.raises(ValueError, match=r"Expected generator or row_generators, got both"):
        KVSampler(model, 1, vocab_size=5, generator=torch.Generator(), row_generators=[torch.Generator()])
    with pytest.raises(ValueError, match=r"Expected 2 row_generators, one per slot, got 1"):
        KVSampler(model, 2, vocab_size=5, row_generators=[torch.Generator()])
    with pytest.raises(ValueError, match=r"Expected temperature >= 0, got -1"):
        KVSampler(model, 1, vocab_size=5, temperature=-1)
    with pytest.raises(ValueError, match=r"Expected logits of shape \(B, V\) and B generators, got \(2, 3\) and 1"):
        sample_tokens_per_row(torch.zeros(2, 3), [torch.Generator()])


FEATURE_PACKAGES = ("dialogue", "edit", "feedback", "tasks", "tools")


def test_feature_packages_never_import_each_other():
    """Shared parts move down (the dialogue users' sampler lives in generation.py, not in edit/)."""
    root = Path(textgen_env.__file__).parent
    found = []
    for package in FEATURE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "textgen_env" and len(parts) > 1 and parts[1] in set(FEATURE_PACKAGES) - {package}:
                        found.append(f"{path.relative_to(root)} imports {name}")
    assert not found, found


def test_demo_policy_steps_like_the_cache_it_wraps(model_and_tokenizer):
    """KVSampler.step is SlotKVCache.advance followed by the sampler on the first vocab_size logits."""
    from textgen_env.kv import SlotKVCache

    model, tokenizer = model_and_tokenizer
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS[:3]]
    sampler = KVSampler(model, 3, vocab_size=len(tokenizer), generator=torch.Generator().manual_seed(2))
    cache, generator = SlotKVCache(model, 3), torch.Generator().manual_seed(2)
    feed, restart = prompts, [True] * 3
    for _ in range(4):
        tokens = sampler.step(feed, restart)
        logits = cache.advance(feed, restart).logits[:, : len(tokenizer)]
        assert torch.equal(tokens, sample_tokens(logits, generator=generator))
        feed, restart = [[t] for t in tokens.tolist()], [False] * 3
    assert np.all(tokens.numpy() < len(tokenizer))
