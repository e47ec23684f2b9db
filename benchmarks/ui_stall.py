"""The longest time the wizard's UI thread is unresponsive while a sandbox deploy runs.

Runs the real main window headless against a sandbox started in a temporary
folder the way the wizard starts it (a process of its own), fills the demo spec,
presses Create (the run goes to the deployment process, as in the wizard, so only
reading its reports shares the UI's interpreter), and while the deployment runs
a 5 ms QTimer on the UI thread records when each tick is delivered. A stall is
the gap between two ticks minus the 5 ms interval: the time the event loop could
not react (to a click, a repaint, a key). The deploy's own events (rows,
progress, log lines) are drawn meanwhile, so their cost counts.

Prints: latency, deploy_s, ticks, max_stall_ms, p99_stall_ms, stalls_over_16ms,
and gc_max_ms / gc_gen2_runs: the longest garbage collection during the deploy (it
holds the interpreter lock, so it stalls the UI whichever thread triggers it) and
how many full collections ran.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INTERVAL_MS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", default="fast",
                        help="sandbox profile (fast | realistic-scaled)")
    parser.add_argument("--explain", type=int, default=0, metavar="N",
                        help="also print, for the N longest stalls, where every other "
                             "thread was when the UI thread got going again")
    parser.add_argument("--frames", type=int, default=4, metavar="K",
                        help="with --explain: how many of each thread's innermost frames")
    args = parser.parse_args()

    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from app.wizard.launch import configure_app, sandbox_factory
    from app.wizard.mainwindow import MainWindow
    from app.wizard.screenshots import demo_spec
    from app.wizard.settings import Settings
    from app.wizard.workers import wait_for_tasks

    app = QApplication(sys.argv[:1])
    configure_app(app)
    with tempfile.TemporaryDirectory(prefix="mlcache-stall-") as tmp:
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        settings = Settings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        sandbox = sandbox_factory(Path(tmp) / "sandbox", latency=args.latency)
        window = MainWindow(backend_factory=sandbox, settings=settings)
        window.resize(1180, 740)
        window.show_when_ready()

        def pump_until(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + timeout
            while not condition():
                if time.monotonic() > deadline:
                    raise TimeoutError("benchmark step timed out")
                app.processEvents()
                time.sleep(0.005)

        pump_until(lambda: window.session.backend is not None, 60)
        window.session.replace_spec(demo_spec())  # type: ignore[arg-type]
        window.go("review")
        pump_until(lambda: window.next_button.isEnabled(), 30)

        ticks: list[float] = []
        seen: list[tuple[float, float, list[str]]] = []

        def tick() -> None:
            now = time.perf_counter()
            if args.explain and ticks and (now - ticks[-1]) * 1000 - INTERVAL_MS > 16:
                seen.append(((now - ticks[-1]) * 1000 - INTERVAL_MS, now - ticks[0],
                             where_threads_are(args.frames)))
            ticks.append(now)

        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(INTERVAL_MS)
        timer.timeout.connect(tick)
        finished: list[object] = []
        window.bridge.run_finished.connect(finished.append)

        collections: list[tuple[int, float]] = []
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                collections.append((info["generation"], time.perf_counter() - gc_started[0]))

        gc.callbacks.append(on_gc)
        started = time.perf_counter()
        timer.start()
        window.next()  # Create: go to Deploy and start the run
        app_exec_deadline = time.monotonic() + 600
        while not finished or window.deploy.running:
            if time.monotonic() > app_exec_deadline:
                raise TimeoutError("the deployment did not finish")
            app.processEvents()
            # Sleep like an idle event loop would, so ticks come from the timer.
            time.sleep(0.001)
        timer.stop()
        gc.callbacks.remove(on_gc)
        deploy_s = time.perf_counter() - started
        ok = bool(getattr(window.deploy.result, "succeeded", False))

        # Leave nothing behind: delete the group, then the sandbox process.
        group = window.session.spec.resource_group.name
        backend = window.session.backend
        assert backend is not None
        backend.delete_group(group, lambda _m: None)
        window.close()
        window.session.close()
        wait_for_tasks(10_000)
        sandbox.stop()  # it outlives windows: stop it before its folder goes

    gaps = [(b - a) * 1000 - INTERVAL_MS for a, b in itertools.pairwise(ticks)]
    stalls = sorted(max(0.0, g) for g in gaps)
    p99 = stalls[int(0.99 * (len(stalls) - 1))] if stalls else 0.0
    print(f"latency={args.latency}")
    print(f"deploy_ok={str(ok).lower()}")
    print(f"deploy_s={deploy_s:.1f}")
    print(f"ticks={len(ticks)}")
    print(f"max_stall_ms={max(stalls, default=0.0):.1f}")
    print(f"p99_stall_ms={p99:.1f}")
    print(f"stalls_over_16ms={sum(1 for s in stalls if s > 16)}")
    print(f"gc_max_ms={max((d for _g, d in collections), default=0.0) * 1000:.1f}")
    print(f"gc_gen2_runs={sum(1 for g, _d in collections if g == 2)}")
    for stall_ms, at, threads in sorted(seen, reverse=True)[:args.explain]:
        print(f"# stall {stall_ms:.1f} ms, {at:.2f} s into the {deploy_s:.1f} s deploy; "
              f"the other threads then:" + ("" if threads else " (none)"))
        for line in threads:
            print(f"#   {line}")
    return 0 if ok else 1


def where_threads_are(frames: int) -> list[str]:
    """Each other thread's innermost frames, the product's own first: the thread that
    held the interpreter through the stall has only just let go, so it is still there."""
    import threading
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    main = threading.main_thread().ident
    out = []
    for ident, frame in sys._current_frames().items():
        if ident == main:
            continue
        stack = traceback.extract_stack(frame)[-frames:]
        where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
        out.append(f"{names.get(ident, ident)}: {where}")
    return out


if __name__ == "__main__":
    sys.exit(main())
