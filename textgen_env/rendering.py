"""`render_frame`: one episode's prompt, completion and reward drawn as a fixed-size RGB picture (``rgb_array``).

The picture has the same shape whatever the text length, as video recorders need: text is wrapped to the width, a
prompt that overflows its box keeps its start and ends with an ellipsis, and a completion that overflows keeps its
end (the newest token is always visible) and starts with one. Pillow is imported on the first call only, so
``import textgen_env`` stays cheap.

>>> frame = render_frame("the movie was", " great", " great", 0.5, 0.5, tokens=1, max_tokens=8, stop_reason=None)
>>> frame.shape, frame.dtype
((384, 640, 3), dtype('uint8'))
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["FRAME_HEIGHT", "FRAME_WIDTH", "render_frame"]

FRAME_HEIGHT = 384
FRAME_WIDTH = 640

_MARGIN = 16
_PAD = 10  # inside a text box
_TEXT_SIZE = 16
_LABEL_SIZE = 12
_LINE_HEIGHT = 22
_PROMPT_LINES = 3
_STATUS_HEIGHT = 56
_ELLIPSIS = "\u2026"
_LINE_CHARACTERS = 256  # more than a line holds even of the narrowest glyph (a space, 3 px): text beyond never shows

_BACKGROUND = (246, 247, 249)
_BOX = (255, 255, 255)
_PROMPT_BOX = (234, 238, 242)
_BORDER = (208, 215, 222)
_LABEL = (101, 109, 118)
_PROMPT_TEXT = (66, 74, 83)
_TEXT = (31, 35, 40)
_HIGHLIGHT = (255, 214, 102)
_STATUS_BOX = (36, 41, 47)
_STATUS_TEXT = (240, 242, 245)
_STATUS_DIM = (160, 168, 176)
_POSITIVE = (87, 209, 129)
_NEGATIVE = (255, 123, 114)
_PROGRESS = (88, 166, 255)
_PROGRESS_TRACK = (72, 79, 88)

_WORDS = re.compile(r"\s*\S+|\s+")  # a word with the spaces before it, or trailing spaces


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Aileron, a TrueType font, in Pillow >= 10.1
    except (TypeError, ImportError, OSError):  # older Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _length(font: Any, text: str) -> float:
    return float(font.getlength(text))


def _wrap(text: str, font: Any, width: float) -> list[tuple[int, int]]:
    """Greedy word wrap by pixel width: the (start, end) character spans of the lines of `text`.

    Newlines break lines; a line never starts with the spaces that a break fell on; a word wider than a line is
    split between characters.
    """
    spans: list[tuple[int, int]] = []
    offset = 0
    for paragraph in text.split("\n"):
        start = end = offset
        for match in _WORDS.finditer(paragraph):
            word_start, word_end = offset + match.start(), offset + match.end()
            if _length(font, text[start:word_end].rstrip()) <= width:
                end = word_end
                continue
            if end > start:  # break before this word, dropping its leading spaces
                spans.append((start, end))
                start = word_start + len(match.group()) - len(match.group().lstrip())
            while _length(font, text[start:word_end]) > width:  # a word wider than a line: split it
                low, high = start + 1, word_end  # the longest text[start:cut] that fits, by bisection
                while low < high:
                    middle = (low + high + 1) // 2
                    low, high = (middle, high) if _length(font, text[start:middle]) <= width else (low, middle - 1)
                spans.append((start, low))
                start = low
            end = word_end
        spans.append((start, end))
        offset += len(paragraph) + 1
    return spans


def _fit_width(font: Any, text: str, width: float, keep_end: bool) -> str:
    """`text` cut (at its start or its end) until it fits `width`."""
    while text and _length(font, text) > width:
        text = text[1:] if keep_end else text[:-1]
    return text


def _draw_prompt(draw: Any, prompt: str, box: tuple[int, int, int, int]) -> None:
    font = _font(_TEXT_SIZE)
    left, top, right, _ = box
    width = right - left - 2 * _PAD
    text = prompt[: (_PROMPT_LINES + 1) * _LINE_CHARACTERS]
    spans = _wrap(text, font, width)
    lines = [text[a:b].rstrip() for a, b in spans]
    if len(lines) > _PROMPT_LINES or len(text) < len(prompt):
        lines = lines[:_PROMPT_LINES]
        lines[-1] = _fit_width(font, lines[-1], width - _length(font, _ELLIPSIS), keep_end=False) + _ELLIPSIS
    for row, line in enumerate(lines):
        draw.text((left + _PAD, top + _PAD + row * _LINE_HEIGHT), line, font=font, fill=_PROMPT_TEXT)


def _draw_completion(draw: Any, completion: str, newest: str, box: tuple[int, int, int, int]) -> None:
    font = _font(_TEXT_SIZE)
    left, top, right, bottom = box
    width = right - left - 2 * _PAD
    max_lines = (bottom - top - 2 * _PAD) // _LINE_HEIGHT
    text = completion[-(max_lines + 1) * _LINE_CHARACTERS :]
    # The newest token is highlighted without the spaces before it; a token of spaces only gets a small mark.
    highlight = len(text) - len(newest.lstrip()) if newest and text.endswith(newest) else len(text) + 1
    spans = _wrap(text, font, width)
    clipped = len(spans) > max_lines or len(text) < len(completion)
    spans = spans[-max_lines:]
    for row, (start, end) in enumerate(spans):
        x = float(left + _PAD)
        y = top + _PAD + row * _LINE_HEIGHT
        if row == 0 and clipped:
            draw.text((x, y), _ELLIPSIS, font=font, fill=_LABEL)
            room = width - _length(font, _ELLIPSIS)
            start = end - len(_fit_width(font, text[start:end], room, keep_end=True))
            x += _length(font, _ELLIPSIS)
        plain = text[start : max(start, min(end, highlight))]
        marked = text[max(start, highlight) : end]
        draw.text((x, y), plain, font=font, fill=_TEXT)
        if marked:
            x0 = x + _length(font, plain)
            x1 = x0 + max(_length(font, marked), 6.0)
            draw.rounded_rectangle((x0 - 1, y - 2, x1 + 2, y + _LINE_HEIGHT - 3), radius=4, fill=_HIGHLIGHT)
            draw.text((x0, y), marked, font=font, fill=_TEXT)
    if newest and highlight == len(text) and spans:  # spaces or a newline: mark where the text goes on
        start, end = spans[-1]
        x0 = left + _PAD + _length(font, text[start:end])
        y = top + _PAD + (len(spans) - 1) * _LINE_HEIGHT
        draw.rounded_rectangle((x0 + 1, y - 2, x0 + 7, y + _LINE_HEIGHT - 3), radius=3, fill=_HIGHLIGHT)


def _signed(value: float) -> tuple[int, int, int]:
    return _POSITIVE if value > 0 else _NEGATIVE if value < 0 else _STATUS_TEXT


def _draw_status(
    draw: Any,
    box: tuple[int, int, int, int],
    last_reward: float,
    episode_return: float,
    tokens: int,
    max_tokens: int,
    stop_reason: str | None,
) -> None:
    font, small = _font(_TEXT_SIZE), _font(_LABEL_SIZE)
    left, top, right, bottom = box
    draw.rounded_rectangle(box, radius=8, fill=_STATUS_BOX)
    x: float = left + 14
    y = top + 10
    fields = [
        ("reward", f"{last_reward:+.4f}", _signed(last_reward)),
        ("return", f"{episode_return:+.4f}", _signed(episode_return)),
        ("tokens", f"{tokens}/{max_tokens}", _STATUS_TEXT),
    ]
    for label, value, colour in fields:
        draw.text((x, y + 3), label, font=small, fill=_STATUS_DIM)
        x += _length(small, label) + 6
        draw.text((x, y), value, font=font, fill=colour)
        x += _length(font, value) + 22
    status = f"done: {stop_reason}" if stop_reason else "running"
    status_width = _length(font, status)
    draw.text((right - 14 - status_width, y), status, font=font, fill=_HIGHLIGHT if stop_reason else _STATUS_DIM)
    track = (left + 14, bottom - 16, right - 14, bottom - 10)
    draw.rounded_rectangle(track, radius=3, fill=_PROGRESS_TRACK)
    done = min(max(tokens / max(max_tokens, 1), 0.0), 1.0)
    if done > 0:
        filled = track[0] + max(done * (track[2] - track[0]), 6)
        draw.rounded_rectangle((track[0], track[1], filled, track[3]), radius=3, fill=_PROGRESS)


def render_frame(
    prompt: str,
    completion: str,
    newest: str,
    last_reward: float,
    episode_return: float,
    *,
    tokens: int,
    max_tokens: int,
    stop_reason: str | None,
) -> np.ndarray:
    """Draw one episode's state as a ``(FRAME_HEIGHT, FRAME_WIDTH, 3)`` uint8 RGB array.

    Args:
        prompt: the prompt text.
        completion: the completion so far (ending with `newest`).
        newest: the newest token's text, highlighted (empty right after reset).
        last_reward: the reward of the last step.
        episode_return: the sum of the episode's rewards so far.
        tokens: completion tokens generated so far.
        max_tokens: the episode's most tokens (``max_new_tokens``).
        stop_reason: why the episode ended, or None while it runs.
    """
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (FRAME_WIDTH, FRAME_HEIGHT), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    label = _font(_LABEL_SIZE)
    right = FRAME_WIDTH - _MARGIN

    y = _MARGIN
    draw.text((_MARGIN, y), "PROMPT", font=label, fill=_LABEL)
    y += 18
    prompt_box = (_MARGIN, y, right, y + 2 * _PAD + _PROMPT_LINES * _LINE_HEIGHT)
    draw.rounded_rectangle(prompt_box, radius=8, fill=_PROMPT_BOX)
    _draw_prompt(draw, prompt, prompt_box)

    y = prompt_box[3] + 12
    draw.text((_MARGIN, y), "COMPLETION", font=label, fill=_LABEL)
    y += 18
    status_top = FRAME_HEIGHT - _MARGIN - _STATUS_HEIGHT
    completion_box = (_MARGIN, y, right, status_top - 12)
    draw.rounded_rectangle(completion_box, radius=8, fill=_BOX, outline=_BORDER)
    _draw_completion(draw, completion, newest, completion_box)

    status_box = (_MARGIN, status_top, right, FRAME_HEIGHT - _MARGIN)
    _draw_status(draw, status_box, last_reward, episode_return, tokens, max_tokens, stop_reason)
    return np.asarray(image, dtype=np.uint8)
