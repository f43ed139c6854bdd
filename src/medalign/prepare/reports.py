"""Free-text radiology reports → the sections we train on (FINDINGS / IMPRESSION).

MIMIC-CXR reports (``files/p10/p10000032/s50414267.txt``) are plain text with upper-case
headers at the start of a line (``EXAMINATION:``, ``INDICATION:``, ``FINDINGS:``,
``IMPRESSION:`` ...). Text before the first header (``FINAL REPORT``, wet reads) is ignored.
"""

from __future__ import annotations

import re
from typing import Sequence

from medalign.prepare.base import clean_text

# A header: start of line, upper-case words (spaces, '/', '&' allowed), a colon.
_HEADER = re.compile(r"^[ \t]*([A-Z][A-Z /&]*[A-Z])[ \t]*:", re.MULTILINE)
# Headers that carry more than one section's content.
_ALIASES = {"FINDINGS AND IMPRESSION": ("FINDINGS", "IMPRESSION"), "IMPRESSIONS": ("IMPRESSION",), "FINDING": ("FINDINGS",)}


def parse_sections(report: str) -> dict[str, str]:
    """Split a report into ``{HEADER: text}`` (headers upper-case, text whitespace-collapsed).

    A repeated header's texts are joined. Aliases (``FINDINGS AND IMPRESSION``) are filed under
    each section they stand for.
    """
    sections: dict[str, str] = {}
    matches = list(_HEADER.finditer(report))
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following is not None else len(report)
        body = clean_text(report[match.end() : end])
        for name in _ALIASES.get(match.group(1), (match.group(1),)):
            sections[name] = f"{sections[name]} {body}".strip() if name in sections else body
    return sections


def report_text(report: str, sections: Sequence[str] = ("findings", "impression")) -> str:
    """The requested sections of `report`, in the order given, joined by a space ("" if none)."""
    parsed = parse_sections(report)
    parts = [parsed.get(name.upper(), "") for name in sections]
    # One alias header filed under both sections must not appear twice.
    unique = list(dict.fromkeys(p for p in parts if p))
    return " ".join(unique)
