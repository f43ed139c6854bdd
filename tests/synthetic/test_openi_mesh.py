"""Open-I MeSH terms → labels and rendered findings, on hand-picked real reports."""

from pathlib import Path

import numpy as np
import pytest

from medalign.synthetic.distractors import _DRAW
from medalign.synthetic.findings import DISTRACTORS, Finding
from medalign.synthetic.images import render_image
from medalign.synthetic.openi_mesh import findings_from_mesh, map_term, mesh_labels, parse_term

txv = pytest.importorskip("torchxrayvision", reason="the Open-I XMLs ship with torchxrayvision (dev extra)")

COLUMNS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding")
# uid: (the report's MeSH major terms as in its XML, copied by hand; the labels a reader assigns by hand)
KNOWN = {
    "CXR1": (["normal"], (0, 0, 0, 0, 0, 1)),
    "CXR2": (["Cardiomegaly/borderline", "Pulmonary Artery/enlarged"], (0, 1, 0, 0, 0, 0)),
    "CXR10": (["Calcified Granuloma/lung/upper lobe/right"], (0, 0, 0, 0, 0, 0)),
    "CXR111": (["Pleural Effusion/right", "Lung Diseases, Interstitial/chronic"], (0, 0, 0, 0, 1, 0)),
    "CXR1197": (["Pulmonary Congestion/bilateral"], (0, 0, 0, 1, 0, 0)),
    "CXR1202": (["Cardiomegaly", "Hypertension, Pulmonary", "Pulmonary Congestion"], (0, 1, 0, 1, 0, 0)),
    "CXR1226": (["Consolidation/lung/lower lobe/right/posterior/focal", "Pneumonia/lower lobe/right"],
                (0, 0, 1, 0, 0, 0)),
    "CXR1193": (["Cardiac Shadow/enlarged", "Airspace Disease/lung/base/bilateral"], (0, 1, 0, 0, 0, 0)),
    "CXR1023": (["No Indexing"], (0, 0, 0, 0, 0, 0)),
    "CXR1105": (["Cardiomegaly/mild", "Cicatrix/lung/middle lobe/right", "Pulmonary Atelectasis/middle lobe/right"],
                (1, 1, 0, 0, 0, 0)),
}


@pytest.fixture(scope="module")
def xml_mesh() -> dict[str, list[str]]:
    """MeSH terms of the KNOWN reports, read from their XML files by the Open-I adapter's parser."""
    import tarfile

    from medalign.prepare.openi import parse_report_xml

    archive = Path(txv.__file__).parent / "data" / "NLMCXR_reports.tgz"
    wanted = {f"ecgen-radiology/{uid[3:]}.xml" for uid in KNOWN}
    with tarfile.open(archive, "r:gz") as tar:
        parsed = [parse_report_xml(tar.extractfile(m).read()) for m in tar.getmembers() if m.name in wanted]
    return {r["uid"]: r["mesh"] for r in parsed}


@pytest.mark.parametrize("uid", sorted(KNOWN))
def test_known_reports_map_to_hand_labels(xml_mesh, uid):
    terms, expected = KNOWN[uid]
    assert xml_mesh[uid] == terms  # the hand copy is the report's real index
    labels = mesh_labels(xml_mesh[uid])
    assert tuple(labels[c] for c in COLUMNS) == expected


def test_parse_and_map_terms():
    assert parse_term("Pleural Effusion/right/small") == ("Pleural Effusion", ["right", "small"])
    assert map_term("Calcinosis/aorta") == "aorta"
    assert map_term("Calcinosis/lung/hilum/lymph nodes/right") == "nodule"
    assert map_term("Calcinosis/blood vessels") is None  # neither lung nor aorta: not drawn
    assert map_term("Lung/hypoinflation") == "low_volumes" and map_term("Lung/azygos lobe") is None
    assert map_term("Fractures, Bone/ribs/right") is None


def test_qualifiers_set_severity_side_and_zone():
    rng = np.random.default_rng(0)
    (effusion,) = findings_from_mesh(["Pleural Effusion/right/large"], rng)
    assert (effusion.label, effusion.severity, effusion.side) == ("Pleural Effusion", 2, "right")
    (heart,) = findings_from_mesh(["Cardiomegaly/borderline"], rng)
    assert (heart.label, heart.severity) == ("Cardiomegaly", 0)
    (atel,) = findings_from_mesh(["Pulmonary Atelectasis/base/left/mild", "Pulmonary Atelectasis/base/right"], rng)
    assert (atel.side, atel.severity) == ("bilateral", 0)  # left + right pooled; "mild" is the only severity
    right, left = findings_from_mesh(["Consolidation/lung/upper lobe/bilateral"], rng)
    assert (right.side, left.side, right.zone) == ("right", "left", "upper")
    (nodules,) = findings_from_mesh(["Nodule/lung/bilateral/diffuse/multiple/small"], rng)
    assert (nodules.label, nodules.count, nodules.side, nodules.severity) == ("nodule", 3, "bilateral", 0)
    (lingula,) = findings_from_mesh(["Pulmonary Atelectasis/lingula"], rng)
    assert lingula.side == "left"


def test_findings_order_and_unstated_parts_are_seeded():
    terms = ["Scoliosis", "Cardiomegaly", "Opacity/lung/base/left", "normal", "Technical Quality of Image Unsatisfactory"]
    a = findings_from_mesh(terms, np.random.default_rng([0, 5]))
    b = findings_from_mesh(terms, np.random.default_rng([0, 5]))
    assert a == b
    assert [f.label for f in a] == ["Cardiomegaly", "opacity", "spine_curve"]
    assert a[1].side == "left" and a[1].zone == "lower"
    severities = {findings_from_mesh(["Cardiomegaly"], np.random.default_rng(s))[0].severity for s in range(30)}
    assert severities == {0, 1, 2}  # unstated severity: drawn


def test_every_distractor_has_its_own_visible_pattern():
    assert set(_DRAW) == set(DISTRACTORS)
    normal = render_image([], 64, np.random.default_rng(1)).image.astype(int)
    drawn = {}
    for name in DISTRACTORS:
        rendered = render_image([Finding(name, 2, side="right", zone="upper")], 64, np.random.default_rng(1))
        diff = np.abs(rendered.image.astype(int) - normal)
        assert (diff > 25).sum() >= 10, f"{name} is barely visible"
        assert len(rendered.fixations) >= 3  # at least one own fixation beyond the two stray glances
        drawn[name] = rendered.image
    names = list(drawn)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(drawn[a].astype(int) - drawn[b].astype(int)).max() > 25, f"{a} and {b} look alike"
