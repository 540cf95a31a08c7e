"""Connectors: the only code that speaks a mail protocol (IMAP, POP3, SMTP)."""
