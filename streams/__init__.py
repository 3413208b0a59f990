"""Shells around the detectors: sources, embedded runner, faust app, sinks, metrics, CLI."""
