"""Studies built on the library: each answers one research question with its own tables and plots."""
