"""Prices beside a choice: each size or plan in a list with its monthly list price.

The prices come from the backend (the same price table as Review's estimate, the
sandbox's own price API on the sandbox) in a worker, so the list is usable at once
and gains its prices when they arrive. An answer for an older list (the tier or the
region changed meanwhile) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QComboBox

from app.spec import DeploymentSpec
from app.wizard.session import Session

PRICING = "pricing\u2026"
SEPARATOR = " \u2014 "


def show_choice_prices(session: Session, combo: QComboBox, spec: DeploymentSpec, path: str,
                       label_of: Callable[[str], str]) -> None:
    """Ask for the prices of every value `combo` offers for `path` and show each beside
    its label ("C1 (1 GB) — USD 40.15/month", or "price unknown")."""
    token = int(combo.property("priceToken") or 0) + 1
    combo.setProperty("priceToken", token)
    for index in range(combo.count()):
        combo.setItemText(index, f"{label_of(str(combo.itemData(index)))}{SEPARATOR}{PRICING}")

    def show(prices: dict[str, str]) -> None:
        if combo.property("priceToken") != token:
            return
        for index in range(combo.count()):
            value = str(combo.itemData(index))
            price = prices.get(value, "price unknown")
            combo.setItemText(index, f"{label_of(value)}{SEPARATOR}{price}")

    # A failed lookup leaves every price unknown, as an answer without them does.
    session.submit(lambda b: b.choice_prices(spec, path), show, lambda _exc: show({}))
