"""The holder's and agency's `elicence` commands that belong to the issuer package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `elicence` app."""
    del app  # commands arrive with the presentation and agency work
