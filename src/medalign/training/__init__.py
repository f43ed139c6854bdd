"""The Lightning layer: the module, data module, callbacks and the CLI (the only place Lightning is imported)."""
