"""The root `elicence` app: every command, and the console script's entry point."""

from __future__ import annotations

import typer

from cli import (
    agency,
    catalogue,
    doctor,
    index,
    issue,
    ledger,
    present,
    records,
    service,
    snapshot,
    verify,
)
from cli.support import PlainHelp

app = typer.Typer(
    name="elicence",
    help="Blockchain-anchored electronic licences (电子证照): issue, anchor and verify.",
    no_args_is_help=True,
    add_completion=False,
    cls=PlainHelp,
    rich_markup_mode=None,
)

# The verifier's and the holder's commands.
app.command("verify")(verify.verify)
app.command("demo")(verify.demo)
app.add_typer(catalogue.catalogue_app, name="catalogue")
app.command("present")(present.present_command)
# The governor's and the agency's.
app.add_typer(agency.registry_app, name="registry")
app.add_typer(agency.agency_app, name="agency")
app.command("issue")(issue.issue)
for _verb, _command in issue.status_commands().items():
    app.command(_verb)(_command)
app.command("supersede")(issue.supersede_command)
app.command("records")(records.records_command)
# The operators'.
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(index.index_app, name="index")
app.add_typer(snapshot.snapshot_app, name="snapshot")
app.command("serve")(service.serve)
app.command("serve-worker", hidden=True)(service.serve_worker)
app.command("audit")(service.audit)
app.add_typer(service.apikey_app, name="apikey")
app.command("doctor")(doctor.doctor)


def main() -> None:
    """Entry point of the console script (every elicence process starts here, the node,
    the service's workers and the issuing workers included)."""
    from ledger.private import restrict_umask

    # Documents, QR images, keystores, audit and index hold secrets or personal data.
    restrict_umask()
    app()
