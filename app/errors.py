"""One error taxonomy, by who is at fault, each with a recommendation.

The CLI maps the classes to exit codes, the GUI shows message + recommendation,
and the log keeps the detail. The base class is never raised itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.spec import DeploymentSpec


@dataclass(frozen=True)
class Recovery:
    """A fix the product can make for the user: what it is called and the spec it leads to.

    The GUI offers it as a button and the CLI names it; neither reads it out of
    an error's text.
    """

    action: str  # a stable key, e.g. "switch-to-managed-redis"
    label: str  # the button's text
    spec: DeploymentSpec


class MlcacheError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code = 1

    def __init__(
        self, message: str, recommendation: str = "", *, code: str = "",
        recovery: Recovery | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.recommendation = recommendation
        # Azure's error code when the error came from Azure ("" otherwise).
        self.code = code
        self.recovery = recovery

    def __str__(self) -> str:
        if self.recommendation:
            return f"{self.message}\n  {self.recommendation}"
        return self.message


class BadInput(MlcacheError):
    """The user's file, flag or value cannot be used as given."""

    exit_code = 2


class RuleProblems(BadInput):
    """The spec reads fine, but a value breaks an Azure rule (a length, a character, a count).

    The same exit code as `validate` gives for it, whichever command finds it.
    """

    exit_code = 1


class NotPermitted(MlcacheError):
    """The signed-in identity or the tenant may not do this."""


class QuotaOrRegion(MlcacheError):
    """Azure refuses for capacity, quota or regional availability."""


class ServiceFailure(MlcacheError):
    """Azure (or the sandbox) failed or answered something unexpected."""


class Cancelled(MlcacheError):
    """The user stopped the operation."""
