"""The command line: flag parsing (parse.py) and the verbs (main.py), a thin layer over the
Client API.  Nothing below imports from here."""
from .main import main  # noqa: F401  (`lxcbox.cli:main` is the console script)
