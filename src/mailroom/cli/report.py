"""`mailroom report activity`: the activity report for scripts and cron, as the API gives
it (services.activity_report; the operator counts all the company's logged mail).

    mailroom report activity --company Acme --by week --from 2026-01-01 --to 2026-03-31
    mailroom report activity --company Acme --by user --csv > activity.csv
"""

from __future__ import annotations

from datetime import date

import typer

from mailroom.cli.common import console, get_app, print_json
from mailroom.crm.companies import get_company, get_user
from mailroom.errors import BadInput

report_app = typer.Typer(help="Reports: mail sent and received.", no_args_is_help=True)


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{name} {value!r} is not a date.", hint="Write YYYY-MM-DD.") from None


@report_app.command("activity")
def report_activity(
    company: str = typer.Option(..., "--company"),
    by: str = typer.Option("week", "--by", help="user | week | type | stage"),
    start: str = typer.Option(None, "--from", help="First day, YYYY-MM-DD (UTC)."),
    end: str = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (UTC)."),
    as_json: bool = typer.Option(False, "--json", help='{"rows": [...]}, as the API.'),
    as_csv: bool = typer.Option(False, "--csv"),
    user: str = typer.Option(None, "--user", help="Only this user's mail (their email)."),
) -> None:
    """Logged mail sent and received per user, week, record type or opportunity stage."""
    from mailroom.services.activity_report import activity_report, operator_viewer

    with get_app().sessions() as session:
        owner = get_company(session, company)
        viewer = operator_viewer(company_id=owner.id)
        user_id = get_user(session, user).id if user else None
        report = activity_report(
            session,
            viewer=viewer,
            by=by,
            start=_day(start, "--from"),
            end=_day(end, "--to"),
            user_id=user_id,
        )
    if as_json:
        print_json({"rows": report.rows})
        return
    if as_csv:
        print(report.csv(), end="")
        return
    console.print(f"Logged mail per {report.by}, {report.start} to {report.end}:", markup=False)
    label = {"user": "email", "week": "week", "type": "type", "stage": "stage"}[report.by]
    for row in report.rows:
        console.print(f"{row[label]}: {row['sent']} sent, {row['received']} received", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
