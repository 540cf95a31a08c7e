"""`mailroom oauth set|list`: the OAuth clients Mailroom signs mailboxes in with.

`mailroom oauth set google|microsoft --client-id ID --client-secret-stdin [--authorize-url
URL] [--token-url URL]` registers (or replaces) the provider's client; the secret comes on
standard input and is stored encrypted. `mailroom oauth list [--json]` shows the clients
and the endpoints in use, never a secret.
"""

from __future__ import annotations

import typer

from mailroom.cli.common import console, get_app, print_json, read_secret_stdin

oauth_app = typer.Typer(
    help="OAuth clients for signing in Google and Microsoft mailboxes.", no_args_is_help=True
)


@oauth_app.command("set")
def oauth_set(
    provider: str = typer.Argument(..., metavar="google|microsoft"),
    client_id: str = typer.Option(..., "--client-id", help="The client (application) id."),
    client_secret_stdin: bool = typer.Option(
        False, "--client-secret-stdin", help="Read the client secret from standard input."
    ),
    authorize_url: str = typer.Option(
        None, "--authorize-url", metavar="URL", help="Override the authorization endpoint."
    ),
    token_url: str = typer.Option(
        None, "--token-url", metavar="URL", help="Override the token endpoint."
    ),
) -> None:
    """Register the OAuth client of a provider (its secret is stored encrypted)."""
    if not client_secret_stdin:
        raise typer.BadParameter(
            "pass the client secret on standard input with --client-secret-stdin"
        )
    secret = read_secret_stdin("Client secret")
    from mailroom.services.oauth import register_client

    row = register_client(
        get_app(),
        provider=provider,
        client_id=client_id,
        client_secret=secret,
        authorize_url=authorize_url,
        token_url=token_url,
    )
    console.print(f"OAuth client for {row['provider']} saved ({row['client_id']}).")


@oauth_app.command("list")
def oauth_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the registered OAuth clients and their endpoints (never the secret)."""
    from mailroom.services.oauth import clients

    rows = clients(get_app())
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No OAuth client registered (mailroom oauth set google|microsoft …).")
    for row in rows:
        console.print(
            f"{row['provider']}\t{row['client_id']}\t{row['authorize_url']}\t{row['token_url']}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(oauth_app, name="oauth")
