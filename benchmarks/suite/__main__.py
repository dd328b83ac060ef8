"""``python -m benchmarks.suite``."""

from benchmarks.suite.cli import main

if __name__ == "__main__":
    main()
