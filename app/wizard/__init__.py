"""The Qt desktop wizard: the only package that imports PySide6."""

from app.wizard.qtcompat import keep_singletons_alive

# Before any other wizard module makes a Qt call (see qtcompat for why).
keep_singletons_alive()
