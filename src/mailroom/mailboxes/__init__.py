"""Mailboxes as stored: settings, encrypted credentials, the status type and its moves.

This package holds what a connected mailbox *is* (its row, its login, its status); it
does not talk to servers and does not sync (that is `mailroom.sync`). Use cases that
combine logging in with saving live in `mailroom.services.mailbox_setup`.
"""
