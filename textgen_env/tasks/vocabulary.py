"""Word lists the procedural tasks draw from: common words, categories of things, names for word problems."""

from __future__ import annotations

__all__ = ["CATEGORIES", "NAMES", "SENTENCE_WORDS", "WORDS"]

WORDS: tuple[str, ...] = (
    "apple", "banana", "cherry", "garden", "window", "purple", "rocket", "silver", "basket", "candle",
    "dragon", "forest", "guitar", "honey", "island", "jacket", "kitten", "lemon", "marble", "needle",
    "orange", "pencil", "rabbit", "saddle", "tomato", "umbrella", "velvet", "walnut", "yellow", "zebra",
    "strawberry", "mississippi", "balloon", "coffee", "letter", "bottle", "summer", "puzzle", "butter", "little",
    "table", "river", "cloud", "stone", "bread", "train", "piano", "music", "paper", "water",
)  # fmt: skip
"""Lowercase words of 4 to 11 letters, several with repeated letters (for counting)."""

SENTENCE_WORDS: tuple[str, ...] = (
    "the", "cat", "sat", "on", "a", "warm", "mat", "dog", "runs", "fast", "birds", "sing", "in", "morning",
    "we", "like", "green", "tea", "sun", "is", "bright", "today", "my", "friend", "reads", "books", "at", "night",
)  # fmt: skip
"""Short words that sentences (for word counting and word-order tasks) are built from."""

CATEGORIES: dict[str, tuple[str, ...]] = {
    "fruits": ("apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum"),
    "animals": ("cat", "dog", "horse", "lion", "mouse", "rabbit", "sheep", "tiger", "wolf", "zebra"),
    "vehicles": ("bus", "car", "bicycle", "boat", "plane", "train", "truck", "scooter", "tram", "van"),
    "colors": ("red", "blue", "green", "yellow", "purple", "black", "white", "pink", "brown", "gray"),
}
"""Disjoint categories of things (for counting the members of one category in a mixed list)."""

NAMES: tuple[tuple[str, str], ...] = (
    ("Alice", "She"), ("Ben", "He"), ("Chloe", "She"), ("David", "He"), ("Emma", "She"), ("Farid", "He"),
    ("Grace", "She"), ("Hiro", "He"), ("Isla", "She"), ("Jamal", "He"), ("Keiko", "She"), ("Liam", "He"),
)  # fmt: skip
"""(name, pronoun) pairs for word problems."""
