"""The running line: sources, frame queue, inference, verdicts, live stats, archive, overlay.

``build.py`` puts a line together from what a person chose; ``pipeline.py`` runs it.
"""
