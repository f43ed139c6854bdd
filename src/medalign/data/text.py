"""Report text cleaning: the one rule every path applies (prepare, training, evaluation)."""

from __future__ import annotations

import math
import re

_WHITESPACE = re.compile(r"\s+")


def clean_report(text: object) -> str:
    """Collapse whitespace and strip; NaN and None become "". Reports keep their case (the tokenizer decides)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return _WHITESPACE.sub(" ", str(text)).strip()
