"""Reports of the gaze test bed: real Open-I sentences, location stated as often as PadChest says.

A present finding gets one real Open-I sentence of its class (`assets.openi_sentences`). When
the report states its location (`Lesion.located`), the sentence is one that names a side, with
that side (and any upper / middle / lower) rewritten to the lesion's; otherwise it is one with
no location word at all. Absent classes are negated with the embedded set's sentences
(`synthetic.reports`), so a bag of class words cannot tell present from absent. Distractor
lesions are never mentioned.
"""

from __future__ import annotations

import re

import numpy as np

from medalign.synthetic.reports import NEGATIVE, _choice, compose_report
from medalign.synthetic.testbed.assets import SIDE_WORDS, ZONE_WORDS, Assets
from medalign.synthetic.testbed.lesions import Lesion

TESTBED_NEGATIVE = {**NEGATIVE, "Nodule": ("No pulmonary nodules.", "No suspicious pulmonary nodule or mass.",
                                           "No nodules or masses.")}


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def located_sentence(template: str, side: str, zone: str) -> str:
    """`template` with its side word set to `side` and any upper / middle / lower to `zone`."""
    text = SIDE_WORDS.sub(lambda m: _match_case(side, m.group(0)), template)
    if zone:
        text = ZONE_WORDS.sub(lambda m: _match_case(zone, m.group(0)), text)
    return text


def positive_sentence(lesion: Lesion, assets: Assets, rng: np.random.Generator) -> str:
    """One real sentence stating `lesion`, with or without its location."""
    pools = assets.sentences[lesion.label]
    if lesion.located and pools["located"]:
        return located_sentence(_choice(rng, pools["located"]), lesion.side, lesion.zone)
    return _choice(rng, pools["unlocated"] or pools["located"])


def write_report(lesions: list[Lesion], labels: tuple[str, ...], assets: Assets, rng: np.random.Generator) -> str:
    """Report for the reported `lesions` (no distractors), negating some absent classes of `labels`."""
    if any(lesion.label not in labels for lesion in lesions):
        raise ValueError(f"write_report: only reported classes {labels} may be passed, got "
                         f"{[lesion.label for lesion in lesions]}")
    present = {lesion.label for lesion in lesions}
    absent = [name for name in labels if name not in present]
    sentences = compose_report([positive_sentence(lesion, assets, rng) for lesion in lesions], absent, TESTBED_NEGATIVE, rng)
    return re.sub(r"\s+", " ", " ".join(sentences)).strip()
