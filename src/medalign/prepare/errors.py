"""The one error type of dataset preparation."""

from __future__ import annotations


class AdapterError(ValueError):
    """The raw dataset is not in the published layout, or a value is invalid; the message names the file, row and column."""
