"""A private etcd (Debian's ``etcd-server``, 3.4) on free loopback ports.

One member, its data in ``data_dir``. :meth:`Etcd.start` keeps the data that is there, so a
stop (or a kill) and a start is a restart that must lose nothing; :meth:`Etcd.wipe` empties
it. ``fsync=False`` (the default) skips fsync for speed: a killed etcd process still loses
nothing (its writes are with the kernel), only a power loss would.

``secure=True`` starts it as production should run it: TLS only, client certificates
required (``--client-cert-auth``) and etcd's authentication on. A CA, a server and a client
certificate are made in ``data_dir/pki`` (keys mode 0600) with ``cryptography``; the users
are ``root`` and ``ephyra`` (a role reading and writing every key), with random passwords
kept in ``data_dir`` (mode 0600). ``token_ttl`` sets etcd's ``--auth-token-ttl``: how long
an authentication token lasts (etcd's default is 300 s).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from testbed.daemon import Daemon
from testbed.ironic import LOOPBACK, TestbedError, free_port
from testbed.started import Started

BINARY = "/usr/bin/etcd"
CTL = "/usr/bin/etcdctl"
#: The user Ephyra connects as on a secure etcd.
USER = "ephyra"
#: The common name of the server's certificate: no etcd user, so that a request the
#: gateway forwards without a token is nobody's.
SERVER_CN = "etcd-testbed-server"


def _installed(name: str, fallback: str) -> str:
    path = shutil.which(name) or (fallback if Path(fallback).exists() else None)
    if path is None:
        raise TestbedError(f"{name} is not installed (scripts/bootstrap.sh installs etcd-server)")
    return path


def _private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


class Pki:
    """A CA, the server's certificate (127.0.0.1, localhost) and a client's, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = root / "ca.crt"
        self.server_cert, self.server_key = root / "server.crt", root / "server.key"
        self.client_cert, self.client_key = root / "client.crt", root / "client.key"

    def make(self) -> None:
        if self.client_key.exists():
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-testbed-ca")])
        ca = self._sign(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
        self.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        server = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_CN)])
        self._leaf(self.server_cert, self.server_key, server, ca_name, ca_key, server=True)
        # no common name: etcd's gateway refuses a client certificate that has one
        client = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ephyra")])
        self._leaf(self.client_cert, self.client_key, client, ca_name, ca_key)

    def _leaf(
        self,
        cert_path: Path,
        key_path: Path,
        name: x509.Name,
        issuer: x509.Name,
        ca_key: ec.EllipticCurvePrivateKey,
        *,
        server: bool = False,
    ) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(name, key.public_key(), issuer, ca_key, server=server)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _private(key_path, pem)

    @staticmethod
    def _sign(
        subject: x509.Name,
        public: ec.EllipticCurvePublicKey,
        issuer: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        *,
        ca: bool = False,
        server: bool = False,
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            # etcd uses its server certificate as a client too (its gateway dials itself)
            usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
            if server:
                usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
                names: list[x509.GeneralName] = [
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    x509.DNSName("localhost"),
                ]
                builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(key, hashes.SHA256())


class Etcd(Started):
    def __init__(
        self,
        data_dir: Path,
        log: Path,
        *,
        fsync: bool = False,
        secure: bool = False,
        token_ttl: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.secure = secure
        self.pki = Pki(data_dir / "pki")
        self.port = free_port()
        self.peer_port = free_port()
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        argv = [
            _installed("etcd", BINARY),
            "--name=testbed",
            f"--data-dir={data_dir / 'member-data'}",
            f"--listen-client-urls={self.endpoint}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=testbed={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
            "--logger=zap",
        ]
        if secure:
            argv += [
                f"--cert-file={self.pki.server_cert}",
                f"--key-file={self.pki.server_key}",
                f"--trusted-ca-file={self.pki.ca}",
                "--client-cert-auth",
            ]
        if token_ttl is not None:
            argv.append(f"--auth-token-ttl={token_ttl}")
        if not fsync:
            argv.append("--unsafe-no-fsync")
        self.daemon = Daemon("etcd", argv, log, cwd=data_dir)

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The store URL Ephyra takes (``--store``, tooz locks, the jobboard); on a secure
        etcd, as user ``ephyra`` with the client certificate (its password: :attr:`password`,
        or :attr:`password_file`)."""
        if not self.secure:
            return f"etcd3+http://{LOOPBACK}:{self.port}"
        query = urlencode(
            {
                "ca_cert": self.pki.ca,
                "cert_cert": self.pki.client_cert,
                "cert_key": self.pki.client_key,
            },
            safe="/",
        )
        return f"etcd3+https://{USER}@{LOOPBACK}:{self.port}?{query}"

    @property
    def password_file(self) -> Path:
        """The file holding the password of user ``ephyra`` (mode 0600)."""
        return self.data_dir / f"{USER}.password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.secure:
            self.pki.make()
        self.daemon.start()
        self.daemon.wait_until(self.healthy, timeout, "healthy")
        if self.secure:
            self._enable_auth()

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return context

    def healthy(self) -> bool:
        context = self._context() if self.secure else None
        try:
            with urllib.request.urlopen(
                f"{self.endpoint}/health", timeout=1.0, context=context
            ) as reply:
                return bool(json.loads(reply.read()).get("health") == "true")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def etcdctl(self, *args: str, user: str | None = "root", stdin: str = "") -> None:
        """Run ``etcdctl ARGS`` against this etcd (as ``user``: its password goes in
        etcdctl's environment, not its command line), ``stdin`` its input."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCDCTL_API": "3"}
        env["ETCDCTL_ENDPOINTS"] = self.endpoint
        if self.secure:
            env["ETCDCTL_CACERT"] = str(self.pki.ca)
            env["ETCDCTL_CERT"] = str(self.pki.client_cert)
            env["ETCDCTL_KEY"] = str(self.pki.client_key)
        if user is not None:
            env["ETCDCTL_USER"] = f"{user}:{self._secret(user)}"
        argv = [_installed("etcdctl", CTL), *args]
        done = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True)
        with open(self.log, "a") as log:
            log.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}(exit {done.returncode})\n")
        if done.returncode != 0:
            raise TestbedError(f"etcdctl {args[0]} {args[1]} failed: {done.stderr.strip()}")

    def _secret(self, user: str) -> str:
        path = self.data_dir / f"{user}.password"
        if not path.exists():
            _private(path, secrets.token_urlsafe(18).encode())
        return path.read_text().strip()

    def _enable_auth(self) -> None:
        """Users root and ephyra, and etcd's authentication on (once: it is in the data)."""
        done = self.data_dir / "auth-enabled"
        if done.exists():
            return
        for user in ("root", USER):
            self.etcdctl(
                "user", "add", user, f"--new-user-password={self._secret(user)}", user=None
            )
        self.etcdctl("role", "add", USER, user=None)
        self.etcdctl("role", "grant-permission", USER, "readwrite", "--from-key", "/", user=None)
        self.etcdctl("user", "grant-role", USER, USER, user=None)
        self.etcdctl("auth", "enable", user=None)
        done.touch()

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()

    def wipe(self) -> None:
        """Stop and forget every key."""
        self.stop()
        shutil.rmtree(self.data_dir / "member-data", ignore_errors=True)
        (self.data_dir / "auth-enabled").unlink(missing_ok=True)
