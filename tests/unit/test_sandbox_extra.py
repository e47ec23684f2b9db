"""The sandbox without its extra installed: one line naming the install, no traceback.

The extra is made absent the way an interpreter without it sees it: the module
cannot be imported (`sys.modules[name] = None` makes every import of it fail).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from app.sandbox import EXTRA_MODULES, INSTALL_HINT

from .test_dependencies import extra

ROOT = Path(__file__).resolve().parents[2]


def test_the_checked_modules_are_the_sandbox_extra() -> None:
    by_module = importlib.metadata.packages_distributions()
    owners = set()
    for module in EXTRA_MODULES:
        imported = __import__(module, fromlist=["_"])
        top = module.split(".")[0]
        names = by_module.get(top, [])
        if top == "azure":  # a namespace: the distribution installing this module
            names = [d.metadata["Name"] for d in importlib.metadata.distributions()
                     if any(str(f).startswith(module.replace(".", "/") + "/")
                            for f in d.files or [])]
            assert imported.__file__
        owners.update(canonicalize_name(n) for n in names)
    assert owners == set(extra("sandbox"))


@pytest.mark.parametrize("module", EXTRA_MODULES)
def test_sandbox_serve_without_the_extra_names_the_install(module: str, tmp_path: Path) -> None:
    script = (f"import sys; sys.modules[{module!r}] = None\n"
              "from app.cli import main\n"
              f"sys.exit(main(['sandbox', 'serve', '--state-dir', {str(tmp_path)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: the local sandbox needs its extra packages ({module} is not installed): "
        f"{INSTALL_HINT}"]
    assert INSTALL_HINT == "pip install 'mlcache-deploy[sandbox]'"
    assert not (tmp_path / "connection.json").exists()
