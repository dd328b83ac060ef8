"""An engineer's heavy work beside a running line, each job a plain function in a module named
for what it does (``finetune``, ``recalibrate``, ``speed``, ``register``, ``deploy``, ``report``).

The screens hand :class:`inspector.jobs.runner.BackgroundJob` (through ``ui.workers.run_job``)
the function itself, not a name in a string, so a renamed or moved job is an import error at
once instead of a failure in a child process at the engineer's click. The runner still needs a
name the spawned process can import: it derives it, and refuses anything that is not a
module-level function of this package, so every job lives here and nowhere else.

Job modules are imported by the UI process only to name the function: whatever is heavy and not
already loaded there is imported inside the job function, in the job's own process.
"""
