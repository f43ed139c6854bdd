"""Evaluation of a frozen encoder: the embedding cache (`embeddings`), encoders (`encoders`), the
task suite behind `medalign test` (`suite`, `task_types`, `tasks/`), results on disk and plots."""
