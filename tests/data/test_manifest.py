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
        ([BASE, {**BASE, "image": "gone.png"}], [], r"1 referenced file\(s\) not found:\n  row 1 \(line 3\), image .*gone.png"),
        ([{**BASE, "heatmap": "h.npy"}], [], r"not found:\n  row 0 \(line 2\), heatmap .*h.npy"),
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


# ------------------------------------------------------------ bad input, all at once
def test_all_missing_files_are_counted_and_the_first_few_listed(tmp_path):
    rows = [BASE] + [{**BASE, "image": f"gone{i}.png"} for i in range(8)]
    with pytest.raises(ManifestError, match=r"8 referenced file\(s\) not found") as info:
        read_manifest(_write(tmp_path, rows))
    message = str(info.value)
    assert [f"gone{i}.png" in message for i in range(8)] == [True] * 5 + [False] * 3
    assert "... and 3 more" in message


def test_non_utf8_manifest_names_file_row_and_encoding(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    path = tmp_path / "manifest.csv"
    text = "image,text,split\na.png,No effusion.,train\na.png,Kein Erguss \u00fcberall.,train\n"
    path.write_bytes(text.encode("latin-1"))  # ü as the single byte 0xfc
    with pytest.raises(ManifestError, match=r"manifest.csv is not UTF-8: byte b'\\xfc' in row 1 \(line 3\).*iconv -f latin1"):
        read_manifest(path)


def test_duplicate_ids_are_reported_with_their_rows(tmp_path, caplog):
    rows = [{**BASE, "id": "p1"}, {**BASE, "id": "p2"}, {**BASE, "id": "p1"}, {**BASE, "id": "p3"}]
    with caplog.at_level("WARNING", logger="medalign.data.manifest"):
        read_manifest(_write(tmp_path, rows))
    assert "1 id(s) occur more than once (2 rows): id 'p1' at rows [0, 2]" in caplog.text


def test_a_symlinked_image_folder_stays_inside(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.png").write_bytes(b"")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "images").symlink_to(elsewhere)
    path = _write(folder, [{**BASE, "image": "images/x.png"}])
    assert len(read_manifest(path, allow_outside_paths=False)) == 1


@pytest.mark.parametrize("escaping", ["../outside.png", "/etc/hostname", "sub/../../outside.png"])
def test_paths_leaving_the_manifest_folder_are_refused_unless_allowed(tmp_path, escaping):
    folder = tmp_path / "data"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(b"")
    path = _write(folder, [BASE, {**BASE, "image": escaping}])
    with pytest.raises(ManifestError, match=r"row 1 \(line 3\), image path .* is outside the manifest's folder"):
        read_manifest(path, allow_outside_paths=False)
    assert len(read_manifest(path, allow_outside_paths=True, check_files=False)) == 2
    (folder / "sub").mkdir()
    inside = _write(folder, [BASE, {**BASE, "image": "sub/../a.png"}])
    assert len(read_manifest(inside, allow_outside_paths=False)) == 2  # stays inside
