"""``python -m inspector``: the same command line as the ``inspector`` script."""

from inspector.cli import main

main()
