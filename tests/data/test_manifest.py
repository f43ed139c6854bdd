import numpy as np
import pandas as pd
import pytest

from medalign.data.manifest import ManifestError, read_manifest


def _write(tmp_path, rows, **extra):
    (tmp_path / "a.png").write_bytes(b"")
    frame = pd.DataFrame(rows)
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


BASE = {"image": "a.png", "text": "No effusion.", "split": "train", "Edema": 1}


def test_reads_valid_manifest_and_maps_validate_to_val(tmp_path):
    path = _write(tmp_path, [BASE, {**BASE, "split": "validate", "Edema": -1}, {**BASE, "split": "test", "Edema": None}])
    m = read_manifest(path, ["Edema"])
    assert list(m.frame["split"]) == ["train", "val", "test"]
    assert len(m.split("val")) == 1
    np.testing.assert_array_equal(m.labels("zeros", blank="ignore")[:, 0], [1, 0, np.nan])
    np.testing.assert_array_equal(m.labels("ones", blank="ignore")[:, 0], [1, 1, np.nan])
    np.testing.assert_array_equal(m.labels("ignore", blank="ignore")[:, 0], [1, np.nan, np.nan])
    np.testing.assert_array_equal(m.labels("ignore")[:, 0], [1, np.nan, 0])  # default blank: zeros (not mentioned)


@pytest.mark.parametrize(
    "rows,labels,match",
    [
        ([{"image": "a.png", "split": "train"}], [], r"missing column\(s\) \['text'\]"),
        ([BASE], ["Cardiomegaly"], r"missing column\(s\) \['Cardiomegaly'\]"),
        ([BASE, {**BASE, "split": "training"}], [], r"row 1 \(line 3\) has split 'training'"),
        ([BASE, {**BASE, "text": "   "}], [], r"row 1 \(line 3\).*empty report"),
        ([BASE, {**BASE, "Edema": 2}], ["Edema"], r"row 1 \(line 3\), column 'Edema' has label '2'"),
        ([BASE, {**BASE, "Edema": "maybe"}], ["Edema"], r"column 'Edema' has label 'maybe'"),
        ([BASE, {**BASE, "image": "gone.png"}], [], r"row 1 \(line 3\), image file not found: .*gone.png"),
        ([{**BASE, "heatmap": "h.npy"}], [], r"heatmap file not found"),
    ],
)
def test_bad_manifests_name_row_and_value(tmp_path, rows, labels, match):
    with pytest.raises(ManifestError, match=match):
        read_manifest(_write(tmp_path, rows), labels)


def test_missing_manifest_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_manifest(tmp_path / "nope.csv")


def test_synthetic_manifest_is_valid(synthetic_dir):
    from tests.conftest import LABELS

    m = read_manifest(synthetic_dir / "manifest.csv", LABELS)
    assert set(m.frame["split"]) == {"train", "val", "test"}
    assert m.labels().shape == (200, 5)
