"""Clean up: what the dialog lists follows the group name as it is typed."""

from __future__ import annotations

import pytest

from app.wizard.backend import GroupInfo, GroupResource
from tests.unit.wizard.helpers import StandInBackend

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


class GroupsBackend(StandInBackend):
    """Answers the dialog's question, `group_info`, for any group name."""

    def group_info(self, name: str) -> GroupInfo:
        return GroupInfo(True, True, [GroupResource(f"{name}-cache", "Microsoft.Cache/redis")])


def test_listing_follows_the_name_as_typed(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.target.use_backend(GroupsBackend())
    window.pages["basics"].group.set_text("rg-old")
    dialog = window.open_cleanup()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.contents.count() == 1, timeout=5000)
    assert dialog.contents.item(0).text().startswith("rg-old-cache")
    assert "rg-old" in dialog.prompt.text()

    dialog.group.setFocus()
    qtbot.waitUntil(dialog.group.hasFocus, timeout=2000)
    dialog.group.selectAll()
    qtbot.keyClicks(dialog.group, "rg-new")
    # At once: nothing of the old group is left to confirm or delete.
    assert "rg-old" not in dialog.prompt.text() and "rg-old" not in dialog.summary.text()
    assert not dialog.delete_button.isEnabled()
    # After a pause, the new group's contents, with the focus still in the name field.
    qtbot.waitUntil(lambda: dialog.contents.count() == 1
                    and dialog.contents.item(0).text().startswith("rg-new-cache"),
                    timeout=5000)
    assert dialog.group.hasFocus()
    assert dialog.prompt.text() == "Type <b>rg-new</b> to confirm."
    dialog.confirm.setText("rg-new")
    assert dialog.delete_button.isEnabled()
