"""`mailroom token create|list|revoke`: personal API tokens for the REST API.

`mailroom token create --user EMAIL` prints the token on stdout, alone on its line, so a
script can capture it; it is stored only as a hash and cannot be shown again.
"""

from __future__ import annotations

from typing import Any

import typer

from mailroom.cli.common import console, get_app, print_rows
from mailroom.crm.companies import get_user
from mailroom.db.engine import transaction
from mailroom.security.auth import create_api_token, list_api_tokens, revoke_api_token

token_app = typer.Typer(help="API tokens (Authorization: Bearer TOKEN).", no_args_is_help=True)


@token_app.command("create")
def token_create(
    user: str = typer.Option(..., "--user", help="The owner's email address."),
    name: str = typer.Option("", "--name", help="What the token is for."),
) -> None:
    """Create a token for USER and print it (shown once)."""
    with transaction(get_app().sessions) as session:
        owner = get_user(session, user)
        token, _row = create_api_token(session, user=owner, name=name)
    print(token)


@token_app.command("list")
def token_list(
    user: str = typer.Option(..., "--user"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """List a user's tokens (their first characters only)."""
    with get_app().sessions() as session:
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "created_at": t.created_at.isoformat(),
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            }
            for t in list_api_tokens(session, user=get_user(session, user))
        ]
    print_rows(rows, as_json=as_json, line=_token_line)


def _token_line(row: dict[str, Any]) -> str:
    return f"{row['id']}\t{row['prefix']}…\t{row['name']}\t{row['last_used_at'] or ''}"


@token_app.command("revoke")
def token_revoke(
    token_id: int = typer.Argument(..., metavar="ID"), user: str = typer.Option(..., "--user")
) -> None:
    """Revoke one of a user's tokens by its id."""
    with transaction(get_app().sessions) as session:
        revoke_api_token(session, user=get_user(session, user), token_id=token_id)
    console.print(f"Token {token_id} revoked.")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
