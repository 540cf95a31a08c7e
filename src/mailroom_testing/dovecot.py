"""A real, private Dovecot 2.3 for tests and benchmarks: IMAP, IMAPS, POP3 and POP3S on 127.0.0.1.

`DovecotServer(root)` renders `dovecot.conf.template` (beside this module) into `root/etc/`, with
its own base_dir, state_dir, log and maildirs under `root`, four free ports picked at
start and a fresh self-signed certificate (CN 127.0.0.1, SAN 127.0.0.1 + localhost) made
with `cryptography`. It runs `dovecot -F` as a child process and never touches the system
Dovecot (its base_dir, state_dir and instance_name are all private).

Users live in passwd-files, one per user (`add_user`, callable while running). A master
user (`user*mailroom-master` logins, see `auth_master_user_separator`) lets the helpers
`append` and `flags` act as any user over one cached IMAP connection per user: seeding
500 messages takes about a second.

Facts worth knowing (found while writing this):

- Dovecot refuses uid 0 for mail, so as root the mail processes run as the `dovecot`
  system user (`first_valid_uid` is set to its uid); every directory above the mail dir
  must be traversable by that user, so give the server a directory such as
  `tempfile.mkdtemp()` (pytest's basetemp is 0700 and would not do). As non-root
  everything runs as the current user, without the login chroots.
- Dovecot stats a passwd-file it has read at most once a second, so a user appended to a
  shared file could stay unknown for up to a second: hence one file per user, read fresh
  on first use. Re-passwording an existing user waits for the next second.
- `auth_failure_delay = 0` still answers a wrong password after ~0.5 s (the failure queue
  is flushed by a 500 ms timer); the growing per-IP penalty (2 s, 4 s, ... up to 15 s) is
  off because the anvil-auth-penalty socket is disabled in the template.
- Line endings: imaplib's APPEND turns every bare LF or CR into CRLF, Dovecot stores LF
  (`mail_save_crlf = no`) and IMAP FETCH BODY[] returns CRLF. So what a client fetches is
  the seeded bytes with every line ending made CRLF: see `imap_bytes()`.
- A read-only (EXAMINE) session still sees \\Recent on new messages; `flags()` leaves it out.
- OAuth (opt-in, `DovecotServer(root, oauth_introspection_url=URL)`): XOAUTH2 and
  OAUTHBEARER through the oauth2 passdb (Dovecot 2.3.19's own; no plugin needed), which
  POSTs each bearer token to the RFC 7662 endpoint (`introspection_mode = post`) and
  accepts it when the answer has `active: true` and `username` equal to the login name.
  The password passdbs stay as they are, so password and token logins both work. Dovecot
  keeps no token cache of its own here (`auth_cache_size = 0`): every login asks the
  provider, so a revoked or expired token is refused at once.
- The master process binds all listeners before it forks, so an open port does not mean
  the login processes work: `start()` waits for the IMAP and POP3 greetings and a TLS
  handshake on IMAPS and POP3S (about 0.2 s in all).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import grp
import imaplib
import ipaddress
import os
import pwd
import re
import secrets
import signal
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509

from mailroom.dropbox.tls import write_self_signed

DOVECOT_BIN = "/usr/sbin/dovecot"
DOVEADM_BIN = "/usr/bin/doveadm"
TEMPLATE = Path(__file__).parent / "dovecot.conf.template"
MASTER_USER = "mailroom-master"
HOST = "127.0.0.1"

_CRLF_RE = re.compile(rb"\r\n|\r|\n")
_FETCH_FLAGS_RE = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)")
_NAME_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


class DovecotError(RuntimeError):
    """The test Dovecot could not be started or used; the message carries its log."""


def imap_bytes(raw: bytes) -> bytes:
    """What IMAP FETCH BODY[] returns for a message seeded with `append(raw)`."""
    return _CRLF_RE.sub(b"\r\n", raw)


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_cert(cert_path: Path, key_path: Path) -> None:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, valid for a day."""
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
    write_self_signed(cert_path, key_path, common_name=HOST, names=names, days=1, strict=True)


def _traversable(path: Path, uid: int, gids: set[int]) -> bool:
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


class DovecotServer:
    """One private Dovecot instance rooted at `root` (see the module docstring)."""

    def __init__(
        self,
        root: Path | str,
        *,
        mail_user: str | None = None,
        oauth_introspection_url: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.oauth_introspection_url = oauth_introspection_url
        self._as_root = os.geteuid() == 0
        if mail_user is None:
            mail_user = "dovecot" if self._as_root else pwd.getpwuid(os.geteuid()).pw_name
        try:
            pw = pwd.getpwnam(mail_user)
        except KeyError:
            if not self._as_root:
                raise
            pw = pwd.getpwnam("nobody")
        self.mail_user = pw.pw_name
        self._mail_uid, self._mail_gid = pw.pw_uid, pw.pw_gid
        self._mail_gids = {pw.pw_gid} | {
            g.gr_gid for g in grp.getgrall() if self.mail_user in g.gr_mem
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}
        self._users: dict[str, str] = {}
        self._master_password = secrets.token_urlsafe(18)
        self._sessions: dict[str, imaplib.IMAP4] = {}

    # -- paths and ports -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address every listener is on (127.0.0.1)."""
        return HOST

    @property
    def imap_port(self) -> int:
        """Plain IMAP (STARTTLS offered)."""
        return self._port("imap")

    @property
    def imaps_port(self) -> int:
        """IMAP over implicit TLS."""
        return self._port("imaps")

    @property
    def pop3_port(self) -> int:
        """Plain POP3 (STLS offered)."""
        return self._port("pop3")

    @property
    def pop3s_port(self) -> int:
        """POP3 over implicit TLS."""
        return self._port("pop3s")

    @property
    def cert_path(self) -> Path:
        """The server's self-signed certificate (PEM); trust it as a CA in tests."""
        return self.root / "tls" / "cert.pem"

    @property
    def config_path(self) -> Path:
        """The rendered dovecot.conf."""
        return self.root / "etc" / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Dovecot's own log file."""
        return self.root / "log" / "dovecot.log"

    @property
    def running(self) -> bool:
        """Whether the `dovecot -F` child is alive."""
        return self._proc is not None and self._proc.poll() is None

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this server's certificate."""
        ctx = ssl.create_default_context(cafile=str(self.cert_path))
        return ctx

    def log(self) -> str:
        """Dovecot's log plus whatever the master printed on stderr."""
        parts = []
        for path in (self.log_path, self.root / "log" / "master.stderr"):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def problems(self) -> list[str]:
        """Log lines at Warning level or worse, less the expected one from stop()."""
        return [
            line
            for line in self.log().splitlines()
            if any(level in line for level in (" Warning: ", " Error: ", " Fatal: ", " Panic: "))
            and "Killed with signal 15" not in line
        ]

    def _port(self, name: str) -> int:
        if name not in self._ports:
            raise DovecotError("the Dovecot test server is not started")
        return self._ports[name]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, timeout: float = 15.0) -> None:
        """Start Dovecot and wait until IMAP, IMAPS, POP3 and POP3S answer."""
        if self.running:
            return
        self._prepare_dirs()
        make_cert(self.cert_path, self.root / "tls" / "key.pem")
        self._write_file(
            self.root / "etc" / "master-users", f"{MASTER_USER}:{{PLAIN}}{self._master_password}\n"
        )
        (self.root / "etc" / "users").mkdir(exist_ok=True)
        if self._as_root:
            os.chown(self.root / "etc" / "users", 0, self._internal_gid())
            os.chmod(self.root / "etc" / "users", 0o750)
        for name, password in self._users.items():
            self._write_user(name, password, replacing=False)
        last_error: DovecotError | None = None
        for _attempt in range(3):  # a picked port can be taken before Dovecot binds it
            self._ports = dict(zip(("imap", "imaps", "pop3", "pop3s"), free_ports(4), strict=True))
            self._render_config()
            try:
                self._spawn_and_wait(timeout)
                atexit.register(self.stop)
                return
            except DovecotError as exc:
                last_error = exc
                self._kill()
                if "Address already in use" not in exc.args[0]:
                    break
        self._ports = {}
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """Log the helper sessions out and stop Dovecot with all its children; idempotent."""
        for session in self._sessions.values():
            with contextlib.suppress(Exception):
                session.logout()
        self._sessions.clear()
        self._kill()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def pause(self) -> None:
        """Stop Dovecot but keep its ports, mail and users, for `resume()` (fault tests).

        Every process of the instance goes, mail processes serving a client included (the
        master runs in its own process group, see `_spawn_and_wait`).
        """
        for session in self._sessions.values():
            with contextlib.suppress(Exception):
                session.logout()
        self._sessions.clear()
        group = self._proc.pid if self._proc is not None else None
        self._kill()
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)

    def resume(self, *, timeout: float = 15.0) -> None:
        """Start Dovecot again on the same ports after `pause()`."""
        if self.running:
            return
        self._render_config()
        self._spawn_and_wait(timeout)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # master stops its children (shutdown_clients)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _prepare_dirs(self) -> None:
        if len(str(self.root / "run" / "login" / "imap-urlauth-login")) > 100:
            raise DovecotError(f"{self.root} is too long for Dovecot's unix sockets")
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("etc", "run", "state", "log", "tls", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        if not self._as_root:
            return
        os.chmod(self.root, 0o711)
        internal_gid = self._internal_gid()
        os.chown(self.root / "etc", 0, internal_gid)
        os.chmod(self.root / "etc", 0o750)
        os.chown(self.root / "mail", self._mail_uid, self._mail_gid)
        os.chmod(self.root / "mail", 0o700)
        for parent in [self.root, *self.root.parents]:
            if not _traversable(parent, self._mail_uid, self._mail_gids):
                raise DovecotError(
                    f"{parent} is not traversable by the mail user {self.mail_user}: give "
                    "DovecotServer a directory such as tempfile.mkdtemp() under /tmp"
                )

    def _internal_gid(self) -> int:
        try:
            return grp.getgrnam("dovecot").gr_gid
        except KeyError:
            return self._mail_gid

    def _render_config(self) -> None:
        values = {
            "INSTANCE": self.root.name,
            "ROOT": str(self.root),
            "CERT": str(self.cert_path),
            "KEY": str(self.root / "tls" / "key.pem"),
            "MAIL_USER": self.mail_user,
            "MAIL_UID": str(self._mail_uid),
            "MAIL_GID": str(self._mail_gid),
            "MASTER_USER": MASTER_USER,
            "IMAP_PORT": str(self._ports["imap"]),
            "IMAPS_PORT": str(self._ports["imaps"]),
            "POP3_PORT": str(self._ports["pop3"]),
            "POP3S_PORT": str(self._ports["pop3s"]),
            "AUTH_MECHANISMS": "plain login",
            "OAUTH2_PASSDB": "",
        }
        if self.oauth_introspection_url is not None:
            values.update(self._oauth2_values(self.oauth_introspection_url))
        text = TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        if "{{" in text:
            raise DovecotError(
                f"unfilled placeholder in {TEMPLATE}: {text[text.index('{{') :][:40]}"
            )
        if not self._as_root:  # one user for everything; the defaults need root
            me, group = self.mail_user, grp.getgrgid(self._mail_gid).gr_name
            text += f"\ndefault_internal_user = {me}\ndefault_login_user = {me}\n"
            text += f"default_internal_group = {group}\n"
            for service in ("anvil", "imap-login", "pop3-login", "imap-urlauth-login"):
                text += f"service {service} {{\n  chroot =\n}}\n"  # chroot needs root
        self._write_file(self.config_path, text)

    def _oauth2_values(self, introspection_url: str) -> dict[str, str]:
        """The OAuth placeholders, and the passdb's args file written beside the config."""
        args = self.root / "etc" / "dovecot-oauth2.conf.ext"
        self._write_file(
            args,
            '# oauth2 passdb (Dovecot 2.3 docs, "Open Authentication v2.0 database")\n'
            "introspection_mode = post\n"
            f"introspection_url = {introspection_url}\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "force_introspection = yes\n",
        )
        passdb = (
            "# Bearer tokens (XOAUTH2, OAUTHBEARER), checked at the test OAuth provider.\n"
            "passdb {\n"
            "  driver = oauth2\n"
            "  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {args}\n"
            "}\n"
        )
        return {"AUTH_MECHANISMS": "plain login xoauth2 oauthbearer", "OAUTH2_PASSDB": passdb}

    def _spawn_and_wait(self, timeout: float) -> None:
        self.log_path.unlink(missing_ok=True)
        stderr = (self.root / "log" / "master.stderr").open("wb")
        with stderr:
            self._proc = subprocess.Popen(
                [DOVECOT_BIN, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        pending = ["imap", "pop3", "imaps", "pop3s"]
        while pending:
            if self._proc.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with status {self._proc.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not answer on {', '.join(pending)} within {timeout:.0f} s:"
                    f"\n{self.log()}"
                )
            if " Fatal: " in self.log():
                raise DovecotError(f"dovecot failed to start:\n{self.log()}")
            if self._greets(pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.05)

    def _greets(self, name: str) -> bool:
        """True once the listener `name` answers with a greeting (after TLS for *s)."""
        try:
            with socket.create_connection((HOST, self._ports[name]), timeout=2) as sock:
                if name.endswith("s"):
                    ctx = self.ssl_context()
                    with ctx.wrap_socket(sock, server_hostname=HOST) as tls:
                        greeting = tls.recv(512)
                else:
                    greeting = sock.recv(512)
        except (OSError, ssl.SSLError):
            return False
        return greeting.startswith((b"* OK", b"+OK"))

    # -- users -----------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create (or re-password) a user; works while Dovecot runs.

        Each user has a passwd-file of their own, read on first use. Dovecot checks a file
        it has read at most once a second, so re-passwording waits for the next second.
        """
        if not _NAME_RE.match(name) or name.startswith(".") or name == MASTER_USER:
            raise ValueError(f"unusable test user name {name!r}")
        if not password or any(c in password for c in ":\n\r\0"):
            raise ValueError("a test password must be non-empty, without ':' or line breaks")
        replacing = name in self._users
        self._users[name] = password
        if (self.root / "etc" / "users").is_dir():
            self._write_user(name, password, replacing=replacing)

    def _write_user(self, name: str, password: str, *, replacing: bool) -> None:
        path = self.root / "etc" / "users" / name
        old_mtime = int(path.stat().st_mtime) if path.exists() else 0
        written = time.time()
        self._write_file(path, f"{name}:{{PLAIN}}{password}\n")
        if replacing:
            # The mtime must move even if both writes fall in the same second, and Dovecot
            # only re-stats the file in a later second than its last look.
            mtime = max(int(written), old_mtime + 1)
            os.utime(path, (mtime, mtime))
            time.sleep(max(0.0, int(written) + 1 - time.time()))

    def _write_file(self, path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        if self._as_root:
            os.chown(tmp, 0, self._internal_gid())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)

    # -- mail ------------------------------------------------------------------------------

    def doveadm(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `doveadm -c <this config> ARGS...`; raise DovecotError on failure if check."""
        result = subprocess.run(
            [DOVEADM_BIN, "-c", str(self.config_path), *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise DovecotError(
                f"doveadm {' '.join(args)} exited with {result.returncode}: {result.stderr}"
            )
        return result

    def master_login(self, user: str) -> imaplib.IMAP4:
        """A new (uncached) IMAP session on the plain port, logged in as `user` through the
        master user: for a helper thread that must not share `session`'s connection."""
        conn = imaplib.IMAP4(HOST, self.imap_port, timeout=30)
        conn.login(f"{user}*{MASTER_USER}", self._master_password)
        return conn

    def session(self, user: str) -> imaplib.IMAP4:
        """A cached IMAP session logged in as `user` through the master user."""
        conn = self._sessions.get(user)
        if conn is not None:
            try:
                conn.noop()
                return conn
            except (imaplib.IMAP4.error, OSError):
                self._sessions.pop(user, None)
        conn = imaplib.IMAP4(HOST, self.imap_port, timeout=30)
        conn.login(f"{user}*{MASTER_USER}", self._master_password)
        self._sessions[user] = conn
        return conn

    def append(
        self,
        user: str,
        folder: str,
        raw_bytes: bytes,
        flags: Iterable[str] = (),
        internaldate: dt.datetime | None = None,
    ) -> None:
        """APPEND one message (line endings become CRLF on the wire; see imap_bytes)."""
        conn = self.session(user)
        flag_list = "(" + " ".join(flags) + ")"
        when = imaplib.Time2Internaldate(internaldate) if internaldate else None
        typ, data = conn.append(_quote(folder), flag_list, when, raw_bytes)
        if typ != "OK":
            raise DovecotError(f"APPEND to {folder} for {user} failed: {data!r}")

    def flags(self, user: str, folder: str) -> dict[int, set[str]]:
        """UID -> flags of every message in `folder`, read with EXAMINE (changes nothing).

        \\Recent is left out: it belongs to a session, not to the message.
        """
        conn = self.session(user)
        typ, data = conn.select(_quote(folder), readonly=True)
        if typ != "OK":
            raise DovecotError(f"EXAMINE {folder} for {user} failed: {data!r}")
        if int(data[0] or 0) == 0:
            return {}
        typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
        if typ != "OK":
            raise DovecotError(f"UID FETCH FLAGS in {folder} for {user} failed: {data!r}")
        result: dict[int, set[str]] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            match = _FETCH_FLAGS_RE.search(line)
            if match is None:
                continue
            uid = int(match.group(1) or match.group(4))
            raw_flags = (match.group(2) if match.group(1) else match.group(3)) or b""
            result[uid] = {f for f in raw_flags.decode().split() if f != "\\Recent"}
        return result

    def create_folder(self, user: str, folder: str) -> None:
        """Create `folder` in `user`'s mailbox (IMAP CREATE)."""
        conn = self.session(user)
        typ, data = conn.create(_quote(folder))
        if typ != "OK":
            raise DovecotError(f"CREATE {folder} for {user} failed: {data!r}")
