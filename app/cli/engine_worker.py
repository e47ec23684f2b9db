"""`python -m app.cli.engine_worker`: the wizard's deployment process.

The wizard starts it (app.services.engine_process.EngineProcess) and talks to it
in JSON lines on stdin and stdout; it is not a command for people.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    from app.services.engine_process import serve

    messages = os.fdopen(os.dup(1), "wb")
    # Anything a library prints goes to stderr, never in between the messages.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(sys.stdin.buffer, messages)


if __name__ == "__main__":
    sys.exit(main())
