"""Named crash points for tests of what a crash leaves behind.

``point("after-release-commit")`` kills the process with SIGKILL, at once and without cleanup,
when ``$HAINA_FAULT`` names that point, and does nothing otherwise (one dictionary lookup). It
stands where a real crash is possible but cannot be timed from outside: between two durable
steps that must both happen (a release committed, its card not yet written). Tests set the
variable in a child process only.
"""
from __future__ import annotations

import os
import signal

#: environment variable naming the point at which the process kills itself
FAULT_ENV = "HAINA_FAULT"


def point(name: str) -> None:
    """Die here with SIGKILL when ``$HAINA_FAULT`` is ``name``."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
