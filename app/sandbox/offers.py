"""The sandbox subscription's offer: pay-as-you-go, or a free trial.

Azure tells the two apart in `subscriptionPolicies.quotaId` on
`GET /subscriptions/{id}` (`PayAsYouGo_2014-09-01`, `FreeTrial_2014-09-01`),
and some services refuse trial subscriptions: ACR Tasks answers scheduleRun
with 400 `TasksOperationsNotAllowed`. The offer is kept in the state directory
(`offer.json`), so a sandbox restarted there, or started by `sandbox serve`, keeps
the offer it was given once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

OFFER_FILE = "offer.json"
DEFAULT_OFFER = "pay-as-you-go"


@dataclass(frozen=True)
class Offer:
    """What ARM shows of an offer in the subscription's policies."""

    name: str
    quota_id: str
    spending_limit: str

    @property
    def is_free_trial(self) -> bool:
        return self.quota_id.startswith("FreeTrial")


OFFERS = {
    "pay-as-you-go": Offer("pay-as-you-go", "PayAsYouGo_2014-09-01", "Off"),
    # A trial has a spending limit, on by default.
    "free-trial": Offer("free-trial", "FreeTrial_2014-09-01", "On"),
}


def resolve_offer(name: str) -> Offer:
    """The offer called `name`; ValueError naming the choices for anything else."""
    offer = OFFERS.get(name.strip().lower())
    if offer is None:
        raise ValueError(f"offer must be one of {', '.join(OFFERS)}, not {name!r}")
    return offer


def write_offer(state_dir: Path, name: str) -> Offer:
    """Make `name` the offer of the sandbox on `state_dir` (checked first)."""
    offer = resolve_offer(name)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / OFFER_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"offer": offer.name}) + "\n", encoding="utf-8")
    tmp.replace(path)
    return offer


def read_offer(state_dir: Path) -> Offer:
    """The offer kept in `state_dir`; pay-as-you-go when none was set or it is unreadable."""
    try:
        data = json.loads((state_dir / OFFER_FILE).read_text(encoding="utf-8"))
        return resolve_offer(str(data["offer"]))
    except (OSError, ValueError, KeyError, TypeError):
        return OFFERS[DEFAULT_OFFER]
