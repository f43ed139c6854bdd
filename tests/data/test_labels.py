"""Label policies and the single-label rule (medalign.data.labels), on hand-made cells."""

from __future__ import annotations

import numpy as np
import pytest

from medalign.data.labels import LabelPolicy, apply_label_policy, single_label_eligible, single_label_rows

NAN = np.nan
# rows: a blank, an uncertain, a clean single positive, two positives, all blank
RAW = np.array(
    [
        [1, NAN, 0],
        [1, -1, 0],
        [0, 1, 0],
        [1, 1, 0],
        [NAN, NAN, NAN],
    ],
    dtype=np.float32,
)


@pytest.mark.parametrize(
    "uncertain,blank,expected",
    [
        ("zeros", "zeros", [[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]),
        ("ones", "zeros", [[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]),
        ("ignore", "zeros", [[1, 0, 0], [1, NAN, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]),
        ("zeros", "ignore", [[1, NAN, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [NAN, NAN, NAN]]),
        ("ignore", "ignore", [[1, NAN, 0], [1, NAN, 0], [0, 1, 0], [1, 1, 0], [NAN, NAN, NAN]]),
    ],
)
def test_policies_map_cells_as_documented(uncertain, blank, expected):
    out = apply_label_policy(RAW, uncertain, blank)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    assert np.isnan(RAW[0, 1])  # the input is not modified


def test_single_label_rule_depends_only_on_the_policy_applied():
    # default policy: the blank row 0 and the uncertain row 1 both count as single-label
    np.testing.assert_array_equal(single_label_rows(apply_label_policy(RAW)), [True, True, True, False, False])
    # blank: ignore drops rows with a blank anywhere among the classes (the old behaviour)
    np.testing.assert_array_equal(single_label_rows(apply_label_policy(RAW, blank="ignore")), [False, True, True, False, False])
    # the 5x200 rule: blank → not positive, -1 → ineligible, two positives → ineligible
    np.testing.assert_array_equal(single_label_eligible(RAW), [True, False, True, False, False])


def test_bad_policies_name_the_key():
    with pytest.raises(ValueError, match=r"data.blank must be one of \('zeros', 'ignore'\), got 'nan'"):
        LabelPolicy(blank="nan")
    with pytest.raises(ValueError, match=r"uncertain must be one of \('zeros', 'ones', 'ignore'\), got 'maybe'"):
        apply_label_policy(RAW, uncertain="maybe")
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        single_label_rows(np.ones(3))
