"""Time from process start to the wizard's first painted window, headless.

Each run starts a fresh Python process (QT_QPA_PLATFORM=offscreen) that builds
the real main window exactly as `mlcache-deploy` does and reports the moment its
first Paint event is delivered. "Process start" is taken from the kernel's
start time of that process (/proc/<pid>/stat), so interpreter start-up and all
imports count. The child also reports how many azure.* modules were loaded at
that moment: the engine and the SDK must stay out of the start-up path (the
sandbox starts in a worker after the window is up).

Prints: runs, first_paint_ms (median), first_paint_ms_min, first_paint_ms_max,
azure_modules_at_paint.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import os, sys, time, json
from pathlib import Path

def process_start_epoch() -> float:
    # Field 22 of /proc/self/stat: start time in clock ticks since boot.
    stat = Path("/proc/self/stat").read_text()
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    boot = time.time() - uptime
    return boot + ticks / os.sysconf("SC_CLK_TCK")

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from app.wizard.launch import configure_app, create_window
from app.wizard.workers import wait_for_tasks

app = QApplication(sys.argv[:1])
configure_app(app)
window = create_window(sys.argv[1])
result = {}

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and "paint" not in result:
            result["paint"] = time.time()
            result["azure"] = sum(1 for m in sys.modules if m.startswith("azure"))
            QTimer.singleShot(0, app.quit)
        return False

spy = FirstPaint()
window.installEventFilter(spy)
window.show_when_ready()
app.exec()
# The sandbox start (in a worker) may be under way: let it finish, then stop it
# (it outlives windows, so closing the session leaves its process running).
wait_for_tasks(60000)
window.session.close()
from app.connect import stop_sandbox_process
stop_sandbox_process(sys.argv[1])
start = process_start_epoch()
print(json.dumps({"first_paint_ms": (result["paint"] - start) * 1000,
                  "azure_modules": result["azure"]}))
"""


def one_run(python: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mlcache-startup-") as tmp:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=tmp,
                   XDG_CONFIG_HOME=tmp)
        out = subprocess.run(
            [python, "-c", CHILD, str(Path(tmp) / "sandbox")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=True,
        )
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    one_run(sys.executable)  # warm the file cache once; not counted
    results = [one_run(sys.executable) for _ in range(args.runs)]
    times = [r["first_paint_ms"] for r in results]
    print(f"runs={args.runs}")
    print(f"first_paint_ms={statistics.median(times):.0f}")
    print(f"first_paint_ms_min={min(times):.0f}")
    print(f"first_paint_ms_max={max(times):.0f}")
    print(f"azure_modules_at_paint={max(int(r['azure_modules']) for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
