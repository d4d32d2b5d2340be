"""Worker processes that never outlive the process that started them."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(poll_s: float = 1.0) -> None:
    """Exit this worker as soon as its parent is gone (e.g. SIGKILLed), instead of idling forever."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="faceward-parent-watch", daemon=True).start()
