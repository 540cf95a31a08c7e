"""Ingest: the one way a message enters the database, whoever brought it.

A sync (sync.folders, sync.retro), the outbox (a message just sent) and the drop address
(a message BCC'd or forwarded to it) all store mail through this package, so the same
rules apply to every message: parse → classify → filters/rules → store → link → actions
(`batch`), with bodies parsed later on the fast path (`bodies`). `logbook` is the entry
for one message Mailroom sent or received itself.

Layering: ingest sits below the workflows that bring mail (sync, outbox, dropbox, which
never import each other) and above crm and matching, whose rules and record service it
applies; it imports no workflow.
"""
