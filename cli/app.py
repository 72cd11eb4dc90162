"""The root `elicence` app: every command, and the console script's entry point."""

from __future__ import annotations

import typer

from cli import agency, issue, ledger, present, service, verify

app = typer.Typer(
    name="elicence",
    help="Blockchain-anchored electronic licences (电子证照): issue, anchor and verify.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

# The verifier's and the holder's commands.
app.command("verify")(verify.verify)
app.command("demo")(verify.demo)
app.command("catalogue")(verify.show_catalogue)
app.command("present")(present.present_command)
# The governor's and the agency's.
app.add_typer(agency.registry_app, name="registry")
app.add_typer(agency.agency_app, name="agency")
app.command("issue")(issue.issue)
for _verb, _command in issue.status_commands().items():
    app.command(_verb)(_command)
app.command("supersede")(issue.supersede_command)
app.command("records")(issue.records_command)
# The operators'.
app.add_typer(ledger.ledger_app, name="ledger")
app.command("serve")(service.serve)
app.command("serve-worker", hidden=True)(service.serve_worker)
app.command("audit")(service.audit)
app.add_typer(service.apikey_app, name="apikey")


def main() -> None:
    """Entry point of the console script (every elicence process starts here, the node,
    the service's workers and the issuing workers included)."""
    from ledger.private import restrict_umask

    # Documents, QR images, keystores, audit and index hold secrets or personal data.
    restrict_umask()
    app()
