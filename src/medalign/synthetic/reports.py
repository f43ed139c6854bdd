"""Templated radiology reports for synthetic findings.

Each present finding gets one positive sentence (synonyms, severity and location words);
0-3 absent findings are explicitly negated ("No pleural effusion.") so that a
bag-of-words over finding names cannot tell present from absent: a text encoder has to
read the negation.

Vocabulary contract (tests and prompt files rely on it): every sentence about a class
contains one of `FINDING_KEYWORDS[class]`, and a sentence is a negation iff it matches
`NEGATION_PATTERN`; positive sentences never match it.
"""

from __future__ import annotations

import re

import numpy as np

from medalign.synthetic.findings import Finding

FINDING_KEYWORDS = {
    "Atelectasis": ("atelectasis",),
    "Cardiomegaly": ("cardiomegaly", "cardiac", "heart", "cardiomediastinal"),
    "Consolidation": ("consolidation",),
    "Edema": ("edema",),
    "Pleural Effusion": ("effusion",),
}
NEGATION_PATTERN = re.compile(r"\b(no|not|normal|without|negative|unremarkable|clear)\b", re.IGNORECASE)

SEVERITY_WORDS = {  # per class, per severity (mild, moderate, severe)
    "Atelectasis": (("mild", "minimal", "subsegmental"), ("moderate", "segmental"), ("severe", "extensive", "lobar")),
    "Cardiomegaly": (("mild", "slight"), ("moderate",), ("severe", "marked", "massive")),
    "Consolidation": (("small", "patchy", "mild"), ("moderate", "dense"), ("extensive", "large", "lobar")),
    "Edema": (("mild", "minimal"), ("moderate",), ("severe", "marked")),
    "Pleural Effusion": (("small", "trace", "mild"), ("moderate", "moderate-sized"), ("large", "severe", "extensive")),
}
ADVERB = {"mild": "mildly", "slight": "slightly", "moderate": "moderately", "severe": "severely",
          "marked": "markedly", "massive": "massively"}

POSITIVE = {
    "Atelectasis": {
        "single": (
            "{sev} plate-like atelectasis at the {side} base.",
            "{sev} {side} basilar atelectasis.",
            "There is {sev} atelectasis in the {side} lower lobe.",
            "{sev} linear atelectasis at the {side} lung base.",
            "{sev} {side} lower lobe atelectasis with volume loss.",
        ),
        "bilateral": (
            "{sev} bibasilar atelectasis.",
            "{sev} plate-like atelectasis at both lung bases.",
            "There is {sev} bilateral lower lobe atelectasis.",
        ),
    },
    "Cardiomegaly": {
        "single": (
            "{sev} cardiomegaly.",
            "There is {sev} cardiomegaly.",
            "The heart is {adv} enlarged.",
            "The cardiac silhouette is {adv} enlarged.",
            "{sev} enlargement of the cardiac silhouette.",
            "{adv} enlarged cardiac silhouette.",
        ),
    },
    "Consolidation": {
        "single": (
            "{sev} consolidation in the {side} {zone} lobe{bronch}.",
            "There is {sev} consolidation of the {side} {zone} lobe{bronch}.",
            "{sev} airspace consolidation in the {side} {zone} lobe{bronch}.",
            "{sev} consolidation is seen in the {side} {zone} lobe{bronch}.",
            "{side} {zone} lobe consolidation, {sev}{bronch}.",
        ),
    },
    "Edema": {
        "single": (
            "{sev} pulmonary edema.",
            "{sev} pulmonary edema with perihilar haze.",
            "There is {sev} interstitial edema with Kerley B lines.",
            "Findings consistent with {sev} pulmonary edema.",
            "{sev} perihilar haziness compatible with pulmonary edema.",
            "{sev} bilateral pulmonary edema.",
        ),
    },
    "Pleural Effusion": {
        "single": (
            "There is a {sev} {side} pleural effusion.",
            "{sev} {side} pleural effusion.",
            "{sev} {side} effusion blunting the costophrenic angle.",
            "A {sev} {side} pleural effusion is present.",
            "Layering {sev} {side} pleural effusion.",
        ),
        "bilateral": (
            "There are {sev} bilateral pleural effusions.",
            "{sev} bilateral pleural effusions.",
            "{sev} pleural effusions at both bases.",
        ),
    },
}

NEGATIVE = {
    "Atelectasis": ("No atelectasis.", "There is no atelectasis.", "No evidence of atelectasis."),
    "Cardiomegaly": (
        "Heart size is normal.",
        "The cardiac silhouette is normal in size.",
        "No cardiomegaly.",
        "The cardiomediastinal silhouette is within normal limits.",
        "Normal heart size.",
    ),
    "Consolidation": (
        "No focal consolidation.",
        "There is no consolidation.",
        "No evidence of consolidation.",
        "Lungs are clear without consolidation.",
    ),
    "Edema": ("No pulmonary edema.", "There is no pulmonary edema.", "No evidence of pulmonary edema.",
              "No interstitial edema."),
    "Pleural Effusion": ("No pleural effusion.", "No pleural effusions.", "There is no pleural effusion.",
                         "No evidence of pleural effusion."),
}
NORMAL_IMPRESSIONS = (
    "No acute cardiopulmonary process.",
    "No acute cardiopulmonary abnormality.",
    "The lungs are clear.",
    "No acute intrathoracic process.",
)
NEUTRAL = ("No pneumothorax.", "No acute osseous abnormality.", "Osseous structures are intact.",
           "The mediastinal contours are unremarkable.")


def _choice(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def positive_sentence(f: Finding, rng: np.random.Generator) -> str:
    """One sentence stating finding `f` with its severity and location."""
    templates = POSITIVE[f.label]
    template = _choice(rng, templates["bilateral"] if f.side == "bilateral" and "bilateral" in templates
                       else templates["single"])
    sev = _choice(rng, SEVERITY_WORDS[f.label][f.severity])
    bronch = " with air bronchograms" if f.air_bronchograms and rng.random() < 0.7 else ""
    text = template.format(sev=sev, adv=ADVERB.get(sev, sev), side=f.side, zone=f.zone, bronch=bronch)
    return text[0].upper() + text[1:]


def write_report(findings: list[Finding], labels: tuple[str, ...], rng: np.random.Generator) -> str:
    """Report text for a pair showing `findings` (classes in `labels` not in it are absent)."""
    present = {f.label for f in findings}
    absent = [name for name in labels if name not in present]
    return " ".join(compose_report([positive_sentence(f, rng) for f in findings], absent, NEGATIVE, rng))


def compose_report(positives: list[str], absent: list[str], negatives: dict[str, list[str]],
                   rng: np.random.Generator) -> list[str]:
    """A report's sentences: the positive ones, a few negated absent classes, filler, a normal summary.

    Args:
        positives: one sentence per present finding (already drawn).
        absent: classes the image does not show; some are stated as negatives.
        negatives: negative phrasings per class.
    """
    sentences = list(positives)
    n_neg = int(rng.integers(1, 5)) if not positives else int(rng.integers(0, 4))
    negated = rng.choice(len(absent), size=min(n_neg, len(absent)), replace=False)
    sentences += [_choice(rng, negatives[absent[k]]) for k in negated]
    if rng.random() < 0.3:
        sentences.append(_choice(rng, NEUTRAL))
    if rng.random() < 0.5:
        rng.shuffle(sentences)
    if not positives and rng.random() < 0.8:  # a normal study usually ends with a summary
        sentences.append(_choice(rng, NORMAL_IMPRESSIONS))
    return sentences

