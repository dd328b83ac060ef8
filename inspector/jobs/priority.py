"""Where a job's process sits below the line: its CPU priority and its torch thread count.

Used from both sides: the job lowers itself (every thread, after imports started new ones), and
the app lowers a running job from outside the moment a line starts (Linux only).
"""

from __future__ import annotations

import os
import sys

NORMAL = "normal priority"


def background_threads(line_running: bool, cpus: int | None = None) -> int:
    """Torch threads for a job: half the cores beside a running line (at least one), else all."""
    cpus = cpus or os.cpu_count() or 2
    return max(1, cpus // 2) if line_running else cpus


def lower_priority(pid: int | None = None) -> str:
    """Put every thread of this process (or of process ``pid``, Linux only) below the line;
    returns what was done, in words.

    On Linux scheduling policy and nice value are per thread (new threads inherit them from the
    thread that creates them), so each thread that already exists is lowered.
    """
    done = NORMAL
    if sys.platform.startswith("linux"):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid or 'self'}/task")]
        except OSError:
            tids = [pid or 0]
        idle = hasattr(os, "SCHED_IDLE")
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, 19)
                done = "nice 19"
                if idle:
                    os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except ProcessLookupError:
                continue  # that thread has ended meanwhile
            except OSError:
                idle = False
        return "idle priority (SCHED_IDLE)" if idle else done
    if pid is not None:
        return done  # another process: only Linux allows it; the job lowers itself at its next step
    if os.name == "nt":
        try:
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            if kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), 0x00000040):  # IDLE_PRIORITY_CLASS
                return "idle priority class"
        except (AttributeError, OSError):
            pass
        return done
    try:
        os.nice(19)
        return "nice 19"
    except (AttributeError, OSError):
        return done
