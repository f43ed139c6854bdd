"""Reference implementations the tests compare the library against (not shipped in the wheel)."""
