"""`medalign` subcommands that are not Lightning's (synth, demo, ...)."""
