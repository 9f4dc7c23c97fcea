"""Child processes that never outlive the process that started them.

A supervisor can die without a chance to stop its children (SIGKILL, the OOM killer, a process manager
after its grace period). Children in their own sessions then keep their ports and models forever, and
the next start loops on "address already in use". Linux's `PR_SET_PDEATHSIG` makes the kernel signal a
child the moment its parent dies, whatever killed the parent; no polling, nothing to forget to stop.

Two caveats shape the API:
- the signal is armed *after* the fork, so a parent that died in between is missed: after arming, the
  child compares `getppid()` with the pid it expected and ends itself if they differ;
- "the parent" is the *thread* that forked: start children from a thread that lives as long as the
  supervisor (its main thread), never from a short-lived helper thread.

Elsewhere (no prctl) these are no-ops: the stack is supported on Linux.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
#: sysexits.h EX_CONFIG: this process cannot run as configured (a model that is missing or will not
#: load, a bad setting). A supervisor does not restart a child that exits with it: it would only fail again.
EXIT_CONFIG = 78


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl  # type: ignore[no-any-return]


_PRCTL = _load_prctl()


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Arm `sig` for when the parent `parent_pid` dies; if it already has, deliver `sig` now.

    Called in the child: in a `preexec_fn` (between fork and exec; the setting survives exec), or first
    thing in a `multiprocessing` child, which is spawned without such a hook."""
    if _PRCTL is None:
        return
    _PRCTL(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os.kill(os.getpid(), sig)


def preexec_die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that ties the child to this process.

    Everything is resolved before the fork; the child only makes two system calls, which is what a
    preexec_fn may safely do in a process that has other threads."""
    if _PRCTL is None:
        return None
    parent = os.getpid()
    return lambda: die_with_parent(parent, sig)
