"""A private Dovecot IMAP server for the tests of inbound e-mail.

Debian's ``dovecot-imapd`` (``.ci/run`` installs it), started as a child of
the test session with its own configuration, users and mail in a temporary
directory, on free loopback ports: IMAP (plain and STARTTLS) and IMAPS,
with a self-signed certificate for ``localhost`` / ``127.0.0.1`` that
clients trust through ``ca_file``. Stopped by its PID at the end.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")
#: Users made at the start, for the tests of one process.
USERS = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _owner() -> tuple[str, int, int]:
    """Who owns the mail: the current user, or (as root, which Dovecot
    refuses for mail) the package's ``dovecot`` user."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_uid, me.pw_gid
    user = pwd.getpwnam("dovecot")
    return user.pw_name, user.pw_uid, user.pw_gid


class DovecotServer:
    host = "127.0.0.1"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.tls_port = _free_port()
        self.ca_file = str(root / "cert.pem")
        self._users = root / "users"
        self._pool = [
            (f"user{n:03}", secrets.token_hex(8)) for n in range(USERS, 0, -1)
        ]
        self._users.write_text(
            "".join(f"{name}:{{PLAIN}}{password}\n" for name, password in self._pool)
        )
        name, uid, gid = _owner()
        login = "dovenull" if os.geteuid() == 0 else name
        group = grp.getgrgid(gid).gr_name
        (root / "mail").mkdir()
        for folder in ("run", "state"):
            (root / folder).mkdir()
        os.chown(root / "mail", uid, gid)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-days", "2", "-keyout", str(root / "key.pem"), "-out", self.ca_file,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        conf = root / "dovecot.conf"
        conf.write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {name}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {min(uid, 1) if uid else 0}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self._users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  # No chroot: only root may chroot, and a test needs none.
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No penalty (a delay of up to 15 s) for every login from 127.0.0.1
  # after a test's wrong password.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# Nor a delay of the failed login itself.
auth_failure_delay = 0
"""
        )
        with (root / "dovecot.out").open("wb") as out:  # before log_path is open
            self._process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self._log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start within 15 s: {self._log()}")

    def _log(self) -> str:
        text = ""
        for name in ("dovecot.out", "dovecot.log"):
            with contextlib.suppress(OSError):
                text += (self.root / name).read_text(errors="replace")
        return text[-2000:]

    def new_user(self) -> tuple[str, str]:
        """A user of its own (name, password), with an empty mailbox.

        Users are written before the server starts: Dovecot caches its
        passwd-file and may not see a user added a moment later.
        """
        return self._pool.pop()

    def _login(self, user: str, password: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port)
        client.login(user, password)
        return client

    def append(
        self, user: str, password: str, raw: bytes, folder: str = "INBOX"
    ) -> int:
        """Deliver ``raw`` by IMAP APPEND; its UID."""
        client = self._login(user, password)
        try:
            _, data = client.append(folder, "", None, raw)
        finally:
            client.logout()
        found = _APPENDUID.search(data[0] or b"")
        assert found, data
        return int(found.group(2))

    def uidvalidity(self, user: str, password: str, folder: str = "INBOX") -> int:
        client = self._login(user, password)
        try:
            _, data = client.status(folder, "(UIDVALIDITY)")
        finally:
            client.logout()
        found = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert found, data
        return int(found.group(1))

    def messages(
        self, user: str, password: str, folder: str = "INBOX"
    ) -> list[tuple[int, set[str]]]:
        """Each message's UID and flags."""
        client = self._login(user, password)
        try:
            client.select(folder, readonly=True)
            _, data = client.uid("FETCH", "1:*", "(FLAGS)")
        finally:
            client.logout()
        found = []
        for line in data:
            if not isinstance(line, bytes):
                continue
            uid = re.search(rb"UID (\d+)", line)
            flags = re.search(rb"FLAGS \(([^)]*)\)", line)
            if uid and flags:
                found.append((int(uid.group(1)), set(flags.group(1).decode().split())))
        return sorted(found)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    """One private Dovecot per test process."""
    if not Path(DOVECOT).exists():
        missing = "dovecot is not installed (apt-get install dovecot-imapd)"
        # .ci/run installs it: there a missing server is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    if os.geteuid() == 0:
        # As root the mail and auth processes run as the dovecot user, who
        # cannot enter pytest's temporary folders (/tmp/pytest-of-root is
        # 0700): a folder of its own in /tmp, removed at the end.
        root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        owned = True
    else:
        root, owned = tmp_path_factory.mktemp("dovecot"), False
    os.chmod(root, 0o755)
    try:
        server = DovecotServer(root)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
