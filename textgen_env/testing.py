"""Tiny offline models and tokenizers for tests, notebooks and quick demos.

Nothing here touches the network: the tokenizer is a word-level vocabulary built in memory and the model is a
randomly initialised GPT-2 built from a config. A forward pass takes well under a millisecond, so a whole training
run on it fits in a unit test.

>>> model, tokenizer = tiny_model_and_tokenizer()
>>> tokenizer.decode(tokenizer("the movie was great")["input_ids"])
'the movie was great'
"""

from __future__ import annotations

import string

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

__all__ = [
    "TINY_VOCABULARY",
    "tiny_math_model_and_tokenizer",
    "tiny_model",
    "tiny_model_and_tokenizer",
    "tiny_tokenizer",
    "tiny_tool_model_and_tokenizer",
    "tiny_tool_tokenizer",
]

SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>")

# Small enough for fast tests, rich enough for sentiment, keyword and story prompts.
TINY_VOCABULARY: tuple[str, ...] = (
    *SPECIAL_TOKENS,
    *[
        "the",
        "a",
        "an",
        "and",
        "but",
        "or",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "with",
        "for",
        "from",
        "by",
        "it",
        "is",
        "was",
        "were",
        "be",
        "this",
        "that",
        "these",
        "those",
    ],
    *["i", "you", "he", "she", "we", "they", "my", "your", "his", "her", "our", "their", "me", "him", "them"],
    *[
        "movie",
        "film",
        "story",
        "plot",
        "actor",
        "actors",
        "acting",
        "director",
        "scene",
        "scenes",
        "music",
        "ending",
        "cast",
        "camera",
    ],
    *[
        "book",
        "day",
        "night",
        "time",
        "place",
        "world",
        "people",
        "man",
        "woman",
        "child",
        "friend",
        "village",
        "sea",
        "king",
        "dog",
        "cat",
    ],
    *[
        "good",
        "great",
        "love",
        "loved",
        "wonderful",
        "beautiful",
        "best",
        "happy",
        "fun",
        "amazing",
        "brilliant",
        "nice",
    ],
    *["bad", "awful", "hate", "hated", "boring", "terrible", "worst", "sad", "dull", "poor", "ugly", "weak"],
    *["very", "really", "quite", "too", "not", "no", "never", "always", "just", "also", "more", "most", "so", "much"],
    *[
        "watched",
        "saw",
        "went",
        "came",
        "made",
        "said",
        "found",
        "liked",
        "felt",
        "thought",
        "looked",
        "had",
        "has",
        "have",
        "do",
        "did",
    ],
    *["once", "upon", "there", "old", "new", "long", "short", "first", "last", "one", "two", "three"],
    *[".", ",", "!", "?"],
)


def tiny_tokenizer(extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A lower-casing word-level tokenizer over `TINY_VOCABULARY` (then `extra_words`); unknown words map to
    ``<unk>``."""
    vocabulary: dict[str, int] = {}
    for word in (*TINY_VOCABULARY, *extra_words):
        vocabulary.setdefault(word, len(vocabulary))
    backend = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, tidies punctuation
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<eos>",
        model_max_length=256,
    )


TOOL_TAGS = ("<tool_call>", "</tool_call>", "<tool_result>", "</tool_result>")
"""Single tokens of `tiny_tool_tokenizer` (the ``"tags"`` tool-call format)."""


def tiny_tool_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer (printable ASCII, the tool tags as single tokens) that can write any JSON tool
    call and decodes to exactly the text it encoded: for tool-use tests and notebooks."""
    characters = [c for c in string.printable if c not in "\r\x0b\x0c"] + ["…", "≈"]
    vocabulary: dict[str, int] = {}
    for piece in (*SPECIAL_TOKENS, *TOOL_TAGS, *characters):
        vocabulary.setdefault(piece, len(vocabulary))
    backend = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")  # one piece per character
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>", model_max_length=512
    )
    tokenizer.add_tokens([AddedToken(tag, normalized=False) for tag in TOOL_TAGS])  # matched whole, kept on decode
    return tokenizer


def tiny_tool_model_and_tokenizer(seed: int = 0) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """The tiny model over `tiny_tool_tokenizer` (512 positions)."""
    tokenizer = tiny_tool_tokenizer()
    return tiny_model(len(tokenizer), seed=seed, n_positions=512), tokenizer


def tiny_model(vocab_size: int | None = None, seed: int = 0, n_positions: int = 256) -> GPT2LMHeadModel:
    """A 2-layer, 32-wide GPT-2 with random weights (seeded), in eval mode.

    Args:
        vocab_size: rows of the embedding; defaults to the size of `tiny_tokenizer()`.
        seed: torch seed for the initial weights, so two calls give identical models.
        n_positions: the longest sequence the model accepts.
    """
    if vocab_size is None:
        vocab_size = len(tiny_tokenizer())
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=2,
        eos_token_id=2,
        pad_token_id=0,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = GPT2LMHeadModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def tiny_model_and_tokenizer(seed: int = 0) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """The tiny model and its matching tokenizer."""
    tokenizer = tiny_tokenizer()
    return tiny_model(len(tokenizer), seed=seed), tokenizer


def tiny_math_model_and_tokenizer(seed: int = 0) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """The tiny model and tokenizer with the whole numbers 0 to 999 as words (one token each), for task envs whose
    answers are numbers (``task="arithmetic"`` at levels 1 to 3)."""
    tokenizer = tiny_tokenizer(tuple(str(n) for n in range(1000)))
    return tiny_model(len(tokenizer), seed=seed), tokenizer
