"""Containers: the on-disk record (state, names), creation, the Container model, the monitor,
logs, exec's stdio relay and interactive terminals.

May import: lxcbox's core (errors, paths, fsutil), runtime/, images/, network/ and volumes.
Never the client, the CLI or the API server.
"""
