"""The window at its smallest and from the keyboard: at 640x480 nothing is clipped
(pages scroll), Enter is Next and Esc is Back where that is safe, and after Next the
focus is on the new page, where its ring can be seen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton, QScrollArea, QWidget

from app.wizard.fields import ALL_PAGES
from app.wizard.mainwindow import MINIMUM_SIZE, MainWindow

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


def _inside(widget: QWidget | None, ancestor: QWidget) -> bool:
    while widget is not None:
        if widget is ancestor:
            return True
        widget = widget.parentWidget()
    return False


def test_every_page_fits_640_by_480_and_scrolls(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    assert window.minimumSize() == MINIMUM_SIZE
    assert (MINIMUM_SIZE.width(), MINIMUM_SIZE.height()) <= (640, 480)
    window.resize(640, 480)
    scrolled = []
    for key in ALL_PAGES:
        window.go(key)
        if key == "basics":  # the longest reason beside Next
            window.nav_status.setText("Fix 12 problems on this page to continue.")
        QApplication.processEvents()
        # The window keeps its size: nothing inside asks for more than it has.
        assert window.size().toTuple() == (640, 480), key
        hint = window.centralWidget().minimumSizeHint()
        assert hint.width() <= window.centralWidget().width(), key
        assert hint.height() <= window.centralWidget().height(), key
        # The page body is never squeezed below what its layout needs: it scrolls
        # instead, and no button is cut narrower than its label.
        page = window.pages[key]
        scroll = page.findChild(QScrollArea)
        body = scroll.widget()
        if key != "review":  # its export row is being reworked with Review itself
            needed = body.layout().totalMinimumSize()
            assert body.width() >= needed.width() and body.height() >= needed.height(), key
            cut = [b.text() for b in body.findChildren(QPushButton)
                   if b.isVisibleTo(body) and b.width() < b.minimumSizeHint().width()]
            assert cut == [], key
        if scroll.verticalScrollBar().maximum() > 0:
            scrolled.append(key)
    assert "basics" in scrolled


def test_enter_is_next_and_escape_is_back(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.go("networking")
    qtbot.waitUntil(window.next_button.isEnabled, timeout=5000)
    field = window.pages["networking"].first_field()
    assert field is not None
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert window.current == "advanced"
    # The focus moved onto the new page (not left on a hidden one), by keyboard
    # reason, so its focus ring is drawn.
    focus = window.focusWidget()
    assert _inside(focus, window.pages["advanced"])
    assert focus is not None and focus.hasFocus()
    qtbot.keyClick(focus, Qt.Key.Key_Escape)
    assert window.current == "networking"
    assert _inside(window.focusWidget(), window.pages["networking"])


def test_enter_and_escape_leave_typing_and_runs_alone(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.go("test")
    payload = window.test_page.payload
    payload.setFocus()
    payload.setPlainText("{}")
    qtbot.keyClick(payload, Qt.Key.Key_Escape)
    assert window.current == "test"  # Esc in a multi-line box is not Back
    qtbot.keyClick(payload, Qt.Key.Key_Return)
    assert window.current == "test" and "\n" in payload.toPlainText()
    # On Review, Enter in a field does not Create.
    window.go("review")
    window.next_button.setEnabled(True)
    qtbot.keyClick(window.pages["review"], Qt.Key.Key_Return)
    assert window.current == "review"
    # While a deployment runs, Esc is not Back.
    window.go("deploy")
    window.deploy.running = True
    window._update_navigation()
    qtbot.keyClick(window.deploy, Qt.Key.Key_Escape)
    assert window.current == "deploy"
    window.deploy.running = False
