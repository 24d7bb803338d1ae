"""A synthetic user for demonstrations and tests: a hidden preference (any reward) that answers the feedback page
over HTTP exactly as a person's browser does.

With ``noise = 0`` the user prefers the completion its hidden reward scores higher (a tie when they score the same);
with ``noise > 0`` it picks A with probability ``sigmoid((r_a - r_b) / noise)``, the Bradley-Terry model of a
person who sometimes disagrees with themself. Ratings map the hidden reward's [-1, 1] linearly onto the scale, rounded.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from textgen_env.rewards.registry import RewardSpec, make_reward

__all__ = ["SyntheticUser"]


class SyntheticUser:
    """A user whose judgements follow a hidden reward.

    Args:
        reward: the hidden preference: a registered reward name, a callable or a `Reward` (scores in [-1, 1]).
        reward_kwargs: arguments of a named reward.
        noise: Bradley-Terry temperature of the choices (0: always the better one).
        scale: the rating scale of the page.
        seed: seed of the noisy choices.
    """

    def __init__(
        self,
        reward: RewardSpec,
        reward_kwargs: dict[str, Any] | None = None,
        *,
        noise: float = 0.0,
        scale: tuple[float, float] = (1, 5),
        seed: int = 0,
    ) -> None:
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < math.inf:
            raise ValueError(f"Expected noise to be a finite number >= 0, got {noise!r}")
        self.reward = make_reward(reward, reward_kwargs)
        self.noise = float(noise)
        self.scale = (float(scale[0]), float(scale[1]))
        self.np_random = np.random.default_rng(seed)

    def score(self, prompt: str, completions: list[str]) -> np.ndarray:
        """The hidden reward of each completion of `prompt`."""
        return np.asarray(self.reward([prompt] * len(completions), completions, [True] * len(completions)), float)

    def choose(self, prompt: str, completion_a: str, completion_b: str) -> str:
        """``"a"``, ``"b"`` or ``"tie"``."""
        a, b = self.score(prompt, [completion_a, completion_b])
        if self.noise == 0:
            return "tie" if a == b else ("a" if a > b else "b")
        p_a = 0.5 * (1 + math.tanh((a - b) / (2 * self.noise)))  # sigmoid((a - b) / noise), without overflow
        return "a" if self.np_random.random() < p_a else "b"

    def rate(self, prompt: str, completion: str) -> int:
        """A whole-number rating on the scale."""
        (value,) = self.score(prompt, [completion])
        low, high = self.scale
        return round(low + (float(np.clip(value, -1, 1)) + 1) / 2 * (high - low))

    def answer_page(self, url: str, answers: int, *, client: Any = None, timeout: float = 30.0) -> dict[str, int]:
        """Answer `answers` questions of the feedback page at `url` (the page's URL with ``?token=...``, as
        `FeedbackServer.url` gives it) over HTTP (``httpx``), sending the token as the page does; returns the counts.

        `client` may be any object with httpx's ``get``/``post`` (FastAPI's ``TestClient`` included) whose base URL
        is the server's."""
        from textgen_env.feedback.guard import TOKEN_HEADER

        parts = urlsplit(url)
        headers = {TOKEN_HEADER: parse_qs(parts.query).get("token", [""])[0]}
        own = client is None
        if own:
            import httpx

            client = httpx.Client(base_url=f"{parts.scheme}://{parts.netloc}", timeout=timeout)
        counts = {"pair": 0, "rating": 0}
        try:
            for _ in range(answers):
                response = client.get("/api/question", headers=headers)
                response.raise_for_status()
                question = response.json()["question"]
                if question is None:
                    break
                prompt, completions = question["prompt"], question["completions"]
                if question["kind"] == "pair":
                    body: dict[str, Any] = {"choice": self.choose(prompt, *completions)}
                else:
                    body = {"rating": self.rate(prompt, completions[0])}
                response = client.post("/api/answer", json={"question_id": question["id"], **body}, headers=headers)
                response.raise_for_status()
                counts[question["kind"]] += 1
        finally:
            if own:
                client.close()
        return counts
