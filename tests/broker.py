"""A real Mosquitto broker for the fleet tests, on 127.0.0.1 at a free port.

A test module gets the fixture with ``pytest_plugins = ["broker"]`` (``tests`` is on pytest's
path). ``broker`` is a :class:`Broker`: logins only (no anonymous clients), a password for each
user in :data:`USERS`, and the ACL a volunteer group uses (README, "Looking after many
units"): a unit reads and writes only its own topics ``callguard/<its user>/#`` and the Home
Assistant discovery configs of its own device, reads the community list; the hub reads every
unit's reports and writes the community list; ``admin`` may also remove numbers from it;
``volunteer`` reads everything. Skipped, saying why, when Mosquitto is not installed (``make
test`` installs it where it can: ``make broker``). PYTEST_DONT_REWRITE: it has no asserts worth
rewriting, and test modules import it by name too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
UNITS = [f"unit-{n}" for n in range(1, 6)]
USERS = [*UNITS, "hub", "admin", "volunteer"]

ACL = """\
# every unit: its own topics, its own Home Assistant device, the community list
pattern readwrite callguard/%u/#
pattern readwrite homeassistant/+/%u/#
pattern read callguard/community/#

user hub
topic read callguard/+/report
topic readwrite callguard/community/#
topic read callguard/hub/remove

user admin
topic read callguard/#
topic write callguard/hub/remove

user volunteer
topic read callguard/#
topic read homeassistant/#
# the volunteer (or the group's Home Assistant) may press a unit's buttons: ack, selftest
topic write callguard/+/cmd/#
"""


def mosquitto() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Broker:
    """A running Mosquitto; see the module docstring."""

    def __init__(self, folder: Path, users: list[str] | None = None, *, tls: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"{'mqtts' if tls else 'mqtt'}://{HOST}:{self.port}"
        self.ca_file = folder / "ca.crt"
        """With ``tls``: the group's CA, which signed the broker's certificate (for 127.0.0.1)."""
        self.passwords = {user: f"pw-{user}-{n}" for n, user in enumerate(users or USERS)}
        self.log = folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        passwd = folder / "passwd"
        passwd.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()))
        tool = shutil.which("mosquitto_passwd") or "mosquitto_passwd"
        subprocess.run([tool, "-U", str(passwd)], check=True)  # hash them all, in place
        (folder / "acl").write_text(ACL)
        tls_lines = ""
        if tls:
            make_certificates(folder)
            tls_lines = (
                f"cafile {folder / 'ca.crt'}\ncertfile {folder / 'broker.crt'}\n"
                f"keyfile {folder / 'broker.key'}\n"
            )
        (folder / "mosquitto.conf").write_text(
            f"listener {self.port} {HOST}\n" + tls_lines +
            # run as whoever runs the tests (as root it would switch to "mosquitto", which
            # cannot read a test's private folder)
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            f"acl_file {folder / 'acl'}\n"
            "persistence false\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
        )

    def password_file(self, user: str) -> Path:
        """A file holding ``user``'s password, mode 0600, as ``[fleet] password_file`` wants."""
        path = self.folder / f"{user}.password"
        path.write_text(self.passwords[user] + "\n")
        path.chmod(0o600)
        return path

    def start(self) -> Broker:
        binary = mosquitto()
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return self
            time.sleep(0.02)
        raise AssertionError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def make_certificates(folder: Path) -> None:
    """A CA (``ca.crt``) and the broker's key and certificate for 127.0.0.1, signed by it."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def signed(builder: x509.CertificateBuilder, key: Any) -> x509.Certificate:
        return (
            builder.not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .serial_number(x509.random_serial_number())
            .sign(key, hashes.SHA256())
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = signed(
        x509.CertificateBuilder()
        .subject_name(name("CallGuard test group CA"))
        .issuer_name(name("CallGuard test group CA"))
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True),
        ca_key,
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = signed(
        x509.CertificateBuilder()
        .subject_name(name(HOST))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        ),
        ca_key,
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.crt").write_bytes(ca.public_bytes(pem))
    (folder / "broker.crt").write_bytes(cert.public_bytes(pem))
    (folder / "broker.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@contextlib.contextmanager
def running_broker(folder: Path, **kw: Any) -> Iterator[Broker]:
    """A broker in ``folder`` (made here) for the ``with`` block; skips the test, saying why,
    without Mosquitto."""
    if mosquitto() is None:
        pytest.skip("mosquitto is not installed (sudo apt install mosquitto; make broker)")
    folder.mkdir()
    running = Broker(folder, **kw).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    """The same, listening with TLS only (``mqtts://``; its CA in ``ca_file``)."""
    with running_broker(tmp_path / "tls-broker", tls=True) as running:
        yield running
