"""Making and adapting models: the training loop, checkpoints, calibration, metrics, workflows.

``workflows.py`` is what the CLI and the app call (train, evaluate, fine-tune, recalibrate);
``background.py`` runs such a job in its own low-priority process beside a running line.
"""
