"""The modality-gap study: λ-shift the embeddings, train early-fusion linear probes, read AUC against λ.

`sweep.run_gap_sweep` runs it; `plots` writes its table and figures; `medalign gap-sweep` is its command.
"""
