"""The desktop application (PySide6): Live for operators, Review for QA, Fine-tune and Models for engineers.

Only this package imports Qt. Every long task runs in a worker thread (``ui.workers``); the UI
thread never waits on the model, the disk or the database. Training, evaluation and latency
measurement run in a background process behind the line (``ui.workers.run_job``,
``inspector.training.adaptation``).
"""
