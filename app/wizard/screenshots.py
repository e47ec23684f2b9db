"""Render every wizard page to PNG, headless, against a throwaway local sandbox.

`python -m app.wizard.screenshots OUT_DIR` (what `make screenshots` runs) walks
the real flow: fills a spec, deploys it to a sandbox started in a temporary
folder, calls the endpoint, opens Clean up, deletes the group, and saves one
picture per page on the way. Nothing it creates outlives it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WINDOW_SIZE = (1180, 740)


def _wait(app: object, condition: Callable[[], bool], timeout: float, what: str) -> None:
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        QCoreApplication.processEvents()
        time.sleep(0.01)


def _settle(seconds: float = 0.3) -> None:
    from PySide6.QtCore import QCoreApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.01)


def demo_spec() -> object:
    from app.spec import CacheSpec, DeploymentSpec, FunctionAppSpec, ImageSpec, ResourceGroupSpec

    return DeploymentSpec(
        location="westeurope",
        resource_group=ResourceGroupSpec("rg-digits-demo"),
        cache=CacheSpec(name="digits-cache-demo"),  # the defaults: keyless Managed Redis
        tags={"env": "demo", "owner": "ml-team"},
        image=ImageSpec(build_from="resources/sample-model", registry="digitsdemoacr",
                        repository="digits-model", tag="v1"),
        function_app=FunctionAppSpec("digits-scoring-demo", "digits-scoring-demo-plan", "B1",
                                     "digitsscoringdemostor"),
    )


def render(out_dir: Path) -> list[Path]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.wizard.launch import configure_app, sandbox_factory
    from app.wizard.mainwindow import MainWindow
    from app.wizard.pages.basics import BasicsPage
    from app.wizard.pages.image import ImagePage
    from app.wizard.settings import Settings
    from app.wizard.workers import wait_for_tasks

    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    configure_app(app)
    with tempfile.TemporaryDirectory(prefix="mlcache-shots-") as tmp:
        scratch = Path(tmp)
        os.environ["XDG_DATA_HOME"] = str(scratch / "data")
        settings = Settings(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))
        sandbox = sandbox_factory(scratch / "sandbox")
        window = MainWindow(backend_factory=sandbox,
                            settings=settings)
        window.resize(*WINDOW_SIZE)
        window.show_when_ready()
        _wait(app, lambda: window.session.backend is not None, 60, "the sandbox")
        window.session.replace_spec(demo_spec())  # type: ignore[arg-type]
        window.resize(*WINDOW_SIZE)

        def shot(name: str, widget: object = None) -> None:
            # The page shown: Review stays busy until it is opened and its checks ran.
            _wait(app, lambda: not window.pages[window.current].busy, 30,
                  "the page's checks")
            _settle()
            target = widget or window
            path = out_dir / f"{name}.png"
            target.grab().save(str(path))  # type: ignore[attr-defined]
            saved.append(path)
            print(f"wrote {path}")

        def go(key: str) -> None:
            window.go(key)
            window.pages[key].recheck_names()

        try:
            go("basics")
            shot("01-basics")
            basics = window.pages["basics"]
            assert isinstance(basics, BasicsPage)
            good = basics.cache_name.text()
            basics.cache_name.edit.setText("Digits_Cache--")
            basics.cache_name.edit.textEdited.emit("Digits_Cache--")
            shot("02-basics-rule-messages")
            basics.cache_name.edit.setText(good)
            basics.cache_name.edit.textEdited.emit(good)
            go("networking")
            shot("03-networking")
            premium = basics.cache_type.findText("Azure Cache for Redis \u2014 Premium")
            standard = basics.cache_type.findText("Azure Cache for Redis \u2014 Standard")
            basics.cache_type.setCurrentIndex(premium)
            go("advanced")
            shot("04-advanced-premium")
            window.go("basics")
            basics.cache_type.setCurrentIndex(standard)
            basics.size_combo.setCurrentIndex(basics.size_combo.findData("C1"))
            go("tags")
            shot("05-tags")
            go("image")
            shot("06-model-image")
            go("function_app")
            shot("07-function-app")
            go("review")
            _wait(app, lambda: "Estimating" not in window.review.cost.text(), 15, "the cost")
            shot("08-review-create")

            window.next()  # Create
            _wait(app, lambda: window.deploy.result is not None or
                  (not window.deploy.running and bool(window.deploy.finished)), 180,
                  "the deployment")
            _wait(app, lambda: not window.deploy.running, 30, "the run to end")
            if not getattr(window.deploy.result, "succeeded", False):
                raise RuntimeError("the demo deployment failed:\n" + window.deploy.log.text())
            shot("09-deploy")

            # The registry now holds the built image: show the existing-image picker.
            image = window.pages["image"]
            assert isinstance(image, ImagePage)
            window.go("image")
            image.use_existing.setChecked(True)
            _wait(app, lambda: image.pick_tag.count() > 0, 15, "the registry's lists")
            image._on_use_pick()
            shot("06b-model-image-pick")
            image.use_build.setChecked(True)
            window.go("deploy")

            window.next()
            test_page = window.test_page
            test_page.send()
            _wait(app, lambda: len(test_page.results) == 1, 30, "the first call")
            test_page.repeat.setValue(24)
            test_page.run_repeated()
            _wait(app, lambda: len(test_page.results) == 25 and
                  test_page.repeat_button.isEnabled(), 60, "the repeated calls")
            shot("10-test")

            dialog = window.open_cleanup()
            dialog.resize(560, 460)
            _wait(app, lambda: dialog.info is not None, 15, "the group's contents")
            dialog.confirm.setText(window.session.spec.resource_group.name)
            shot("11-cleanup-confirm", dialog)
            dialog.delete()
            _wait(app, lambda: dialog.gone, 60, "the deletion")
            dialog.adjustSize()
            shot("12-cleanup-gone", dialog)
            dialog.close()
        finally:
            window.close()
            window.session.close()
            wait_for_tasks(10_000)
            sandbox.stop()  # the sandbox process outlives windows; this one is throwaway
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render every wizard page to PNG.")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    saved = render(args.out_dir)
    print(f"{len(saved)} screenshots in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
