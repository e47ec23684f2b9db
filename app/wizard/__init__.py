"""The Qt desktop wizard: the only package that imports PySide6."""
