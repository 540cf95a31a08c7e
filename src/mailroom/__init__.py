"""Mailroom: fetch a team's mail, match it to CRM records, show it on their timelines."""

__version__ = "0.1.0"
