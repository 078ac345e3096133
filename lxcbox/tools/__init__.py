"""Checks that anyone can run with the project's own tools (`python -m lxcbox.tools.imports`)."""
