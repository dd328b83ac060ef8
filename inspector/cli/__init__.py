"""The ``inspector`` command line: ``app`` (models, data, training) and the line's commands.

``app.py`` holds the application and the model/data/training commands, ``line.py`` the commands that
run or read a line (``run``, ``demo``, ``gui``, ``results``, ``db``), ``common.py`` what they share.
"""

from inspector.cli.app import app, main

__all__ = ["app", "main"]
