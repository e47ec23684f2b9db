"""Test-wide settings: headless Qt, private user dirs, hypothesis sized for CI."""

import os
import tempfile

from hypothesis import HealthCheck, settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# No test may read or write the real user's data, config or cache (deployment
# logs, the default sandbox, QSettings): platformdirs and Qt both follow XDG.
_HOME = tempfile.mkdtemp(prefix="mlcache-tests-")
for _name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = os.path.join(_HOME, _name.lower())
# azure-identity keeps its persistent token cache under ~/.IdentityService.
os.environ["HOME"] = os.path.join(_HOME, "home")
os.makedirs(os.environ["HOME"], exist_ok=True)

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")
