"""Real servers on loopback for Mailroom's tests and benchmarks (STYLE.md #9 and #14).

Installed beside `mailroom` so `bench/` and `tests/` import the same harnesses:

- `mailroom_testing.dovecot`: a private Dovecot (IMAP, IMAPS, POP3, POP3S) with its own
  config, users and certificate under a temp dir; seeding helpers (`append`, `flags`).
- `mailroom_testing.smtp`: an aiosmtpd server with STARTTLS, SMTPS and plain listeners
  that records what it receives.
- `mailroom_testing.fault_proxy`: a TCP proxy that cuts, stalls or answers for the server.
- `mailroom_testing.builders`: RFC 5322 messages built with the stdlib (never pasted mail).
- `mailroom_testing.memory_source`: an in-memory `MailboxSource` for engine tests.

Nothing here is used by Mailroom itself; pytest fixtures around these live in tests/.
"""
