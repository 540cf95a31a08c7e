"""The data dir and everything in it is private whatever the umask (issue 11, item 5):
directories 0700, files 0600, among them the SQLite database with its -wal and -shm, the
secret key, every blob, staged and stored packs and the drop box's TLS files.

Each case runs in a fresh interpreter, because the umask is process-wide: `mailroom init`,
a sync of a mailbox (an in-memory source, so its raw messages reach the blob store), a blob
written directly, a staged pack, a stored pack and the drop box certificate; then every
path under the data dir is listed with its mode while the database is still open.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json, os, stat, sys
os.umask(int(sys.argv[2], 8))
data = sys.argv[1]
from mailroom.cli import main
assert main(["--data-dir", data, "init"]) == 0
from mailroom.app import open_app
from mailroom.config import load_settings
from mailroom.crm.companies import add_company, add_user
from mailroom.db.engine import transaction
from mailroom.dropbox.tls import ensure_self_signed
from mailroom.mail.packs import stage_pack
from mailroom.mailboxes.store import add_mailbox
from mailroom.sync.engine import sync_mailbox
from mailroom_testing.builders import build_message
from mailroom_testing.memory_source import MemorySource

app = open_app(load_settings(data))
with transaction(app.sessions) as session:
    company = add_company(session, name="Acme", domains=["acme.example"])
    ann = add_user(session, company=company, email="ann@acme.example")
    box = add_mailbox(session, app.secrets, user=ann, host="imap.test", port=993, password="pw")
    box_id = box.id
source = MemorySource()
source.folders["INBOX"].append(build_message(attachment=("a.pdf", b"%PDF-1.4 x")))
report = sync_mailbox(app, box_id, opener=lambda _m, _a: source)
assert report.error is None, report.error
app.blobs.put(b"a blob written directly")
area = app.settings.blob_dir / ".staging" / f"{os.getpid()}-test"
stage_pack(area, [b"a staged message"])
name, [(digest, offset, size)] = stage_pack(area, [b"a kept message"])
with app.blobs.batch() as batch:
    batch.adopt([(digest, str(area / name), offset, size)])
    assert batch.keep(digest) is not None  # moved into packs/
ensure_self_signed(app.settings.data_dir / "dropbox-tls", "localhost")
modes = {}
for top, dirs, files in os.walk(data):
    for name in [*dirs, *files]:
        path = os.path.join(top, name)
        modes[os.path.relpath(path, data)] = stat.S_IMODE(os.lstat(path).st_mode)
modes["."] = stat.S_IMODE(os.stat(data).st_mode)
print(json.dumps(modes))
app.close()
"""


@pytest.mark.parametrize("umask", ["022", "000"])
def test_everything_under_the_data_dir_is_private_whatever_the_umask(
    tmp_path: Path, umask: str
) -> None:
    data = tmp_path / "new" / "data"
    env = {"MAILROOM_PARSE_WORKER_MIN": "off", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), umask],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modes: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    names = set(modes)
    assert {".", "mailroom.sqlite3", "mailroom.sqlite3-wal", "mailroom.sqlite3-shm"} <= names
    assert {"secret.key", "blobs", "dropbox-tls/key.pem", "dropbox-tls/cert.pem"} <= names
    assert sum(1 for n in names if n.startswith("blobs/") and len(n) > 70) >= 2
    assert any(n.startswith("blobs/.staging/") and n.endswith(".pack") for n in names)
    assert any(n.startswith("blobs/packs/") and n.endswith(".pack") for n in names)
    leaky = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert leaky == {}
    assert modes["."] == 0o700 and modes["mailroom.sqlite3"] == 0o600
