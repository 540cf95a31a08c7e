"""The one tree of errors Mailroom raises, split by blame.

```
MailroomError                      anything Mailroom reports on purpose (has .hint)
├── UserError                      the caller's fault: shown with a fix, exit code 1
│   ├── BadInput                   a bad argument, file, row or field value
│   ├── NotFound                   an unknown company, user, record, mailbox or message
│   │   └── HostNotAllowed         a private/local mail server address from the web or API
│   ├── Forbidden                  visible to the caller, but not theirs to change
│   ├── Conflict                   it already exists
│   └── RateLimited                too many connection tests in a minute (HTTP 429)
└── SystemFault                    a server's or this system's fault: exit code 2
    ├── MailServerError            talking to a mailbox server failed
    │   ├── AuthenticationError    the server refused the credentials (user must fix)
    │   ├── TokenRejected          it refused an OAuth access token (refresh once, retry)
    │   ├── OAuthRevoked           the provider answered a refresh with invalid_grant
    │   ├── TLSError               the certificate or the TLS handshake was rejected
    │   ├── NetworkError           unreachable, refused, timed out, dropped
    │   ├── ProtocolError          the server said something unexpected, or NO/BAD
    │   └── CapabilityError        the server lacks something Mailroom needs
    ├── RuntimeUnsafe              the Python running Mailroom lacks the email security fixes
    └── ConfigError                the data dir, key or database cannot be used
```

Errors from a mail server are `SystemFault` for the CLI's exit code (the server, not the
command line, failed), but each carries `user_fixable`, which the health log uses to tell
the admin that the fix is theirs (a wrong password) rather than Mailroom's to retry.
No error message ever contains a password: connectors build their messages from the
server's answer and the host name only.
"""

from __future__ import annotations

from typing import Any


class MailroomError(Exception):
    """Base of every error Mailroom raises on purpose; `hint` says how to fix it."""

    exit_code = 2
    kind = "error"
    user_fixable = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (hint and any attribute set after raising, such as a throttle
        # delay), so an error raised in the fetch worker is the same error here.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[MailroomError], message: str, state: dict[str, Any]) -> MailroomError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class UserError(MailroomError):
    """The caller's fault; the message says what to change."""

    exit_code = 1
    kind = "user"
    user_fixable = True


class BadInput(UserError):
    """A bad argument, file, row or value."""

    kind = "bad-input"


class HostNotAllowed(BadInput):
    """A mail server host that resolves to a loopback, private, link-local, multicast,
    unspecified or reserved address, given through the web or the API
    (services.host_policy)."""

    kind = "host-not-allowed"


class RateLimited(UserError):
    """Too many of one kind of request in a short time; `retry_after` is in seconds."""

    kind = "rate-limited"

    def __init__(self, message: str, *, hint: str | None = None, retry_after: int = 60) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class NotFound(UserError):
    """Something named does not exist (or is not visible to the caller)."""

    kind = "not-found"


class Forbidden(UserError):
    """The caller may see this, but not change it (an admin re-pointing a member's login)."""

    kind = "forbidden"


class Conflict(UserError):
    """Something to be created already exists."""

    kind = "conflict"


class SystemFault(MailroomError):
    """A failure of a server or of this system; worth retrying or reporting."""

    exit_code = 2
    kind = "system"


class MailServerError(SystemFault):
    """Talking to a mailbox server failed.

    `step` is the protocol step that failed ("connect": the connection and the server's
    greeting) and `server` says which ("IMAP server HOST:PORT"), when a connector knows.
    """

    kind = "server"
    step: str | None = None
    server: str | None = None


class AuthenticationError(MailServerError):
    """The server refused the user name or password."""

    kind = "auth"
    user_fixable = True


class TokenRejected(MailServerError):
    """The server refused an OAuth 2.0 access token (XOAUTH2/OAUTHBEARER).

    Not an AuthenticationError on purpose: it is no wrong password and must never count
    toward the auto-disable of repeated authentication failures (issue 12 §3). The token
    may just have expired, so the caller refreshes it once and retries; only a refresh
    answered `invalid_grant` (OAuthRevoked) needs the user.
    """

    kind = "token-rejected"


class OAuthRevoked(MailServerError):
    """The provider refused the refresh token (`invalid_grant`): revoked, expired, password
    changed or an admin's policy. Only signing in again fixes it; never retried."""

    kind = "oauth_revoked"
    user_fixable = True


class TLSError(MailServerError):
    """The TLS handshake failed or the certificate was not trusted."""

    kind = "tls"
    user_fixable = True


class NetworkError(MailServerError):
    """The host could not be reached, refused, timed out or dropped the connection."""

    kind = "network"


class ProtocolError(MailServerError):
    """The server answered NO/BAD or something Mailroom could not understand."""

    kind = "protocol"


class CapabilityError(MailServerError):
    """The server lacks a capability Mailroom needs."""

    kind = "capability"


class RuntimeUnsafe(SystemFault):
    """The Python interpreter lacks the `email` package's security fixes."""

    kind = "runtime"


class ConfigError(SystemFault):
    """The data dir, the secret key or the database URL cannot be used."""

    kind = "config"
