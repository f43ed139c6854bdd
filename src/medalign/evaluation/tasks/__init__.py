"""The evaluation tasks: zero-shot, retrieval, report retrieval, linear probe and saliency."""
