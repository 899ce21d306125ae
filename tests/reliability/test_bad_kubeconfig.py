"""Bad kubeconfigs: a missing context, a missing or broken file, an unreachable server, a certificate that is not trusted.

``standby backup run`` reads the placement from S3 (moto, working), then lists the app on site A
through the kubeconfig given: each case is one line naming the site and what to fix.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.reliability.helpers import EXIT_BAD_INPUT, EXIT_FAILED, assert_cli_error, standby
from tests.unit.test_backup_cli import Servers, write_config


def _kubeconfig(server: str, *, context: str = "site-a", **cluster: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
    }


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-apiserver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "tls.crt", tmp / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server whose self-signed certificate no kubeconfig here trusts."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


Writer = Callable[[Path, Servers, str], Path]


def _yaml(doc: Any) -> Writer:
    def write(tmp: Path, servers: Servers, tls: str) -> Path:
        path = tmp / "kubeconfig"
        path.write_text(yaml.safe_dump(doc(servers, tls) if callable(doc) else doc))
        return path

    return write


def _text(text: str) -> Writer:
    def write(tmp: Path, servers: Servers, tls: str) -> Path:
        path = tmp / "kubeconfig"
        path.write_text(text)
        return path

    return write


CASES: dict[str, tuple[Writer, int, str]] = {
    "context missing": (
        _yaml(lambda s, t: _kubeconfig("http://127.0.0.1:1", context="other")),
        EXIT_BAD_INPUT,
        "context site-a",
    ),
    "file missing": (lambda tmp, s, t: tmp / "absent-kubeconfig", EXIT_BAD_INPUT, "absent-kubeconfig"),
    "file empty": (_text(""), EXIT_BAD_INPUT, "cannot load kubeconfig"),
    "not YAML": (_text("clusters: [\n  - {name: a\n"), EXIT_BAD_INPUT, "cannot load kubeconfig"),
    "no clusters": (
        _yaml(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "contexts": [{"name": "site-a", "context": {"cluster": "gone", "user": "u"}}],
                "users": [{"name": "u", "user": {}}],
            }
        ),
        EXIT_BAD_INPUT,
        "cannot load",
    ),
    "certificate-authority-data garbage": (
        _yaml(lambda s, t: _kubeconfig(t, **{"certificate-authority-data": "bm90IGEgY2VydA=="})),
        EXIT_BAD_INPUT,
        "site-a",
    ),
    "server unreachable": (
        _yaml(lambda s, t: _kubeconfig(_closed_port())),
        EXIT_FAILED,
        "apiserver unreachable",
    ),
    "certificate not trusted": (_yaml(lambda s, t: _kubeconfig(t)), EXIT_BAD_INPUT, "certificate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_kubeconfig_is_one_line_naming_the_site(
    case: str, servers: Servers, tmp_path: Path, env: dict[str, str], tls_server: str
) -> None:
    write, code, expected = CASES[case]
    kubeconfig = write(tmp_path, servers, tls_server)
    config = write_config(servers, tmp_path)
    data = yaml.safe_load(config.read_text())
    data["sites"][0]["kube"] = {"kubeconfig": str(kubeconfig), "context": "site-a"}
    config.write_text(yaml.safe_dump(data))
    result = standby("backup", "run", "--config", str(config), "--app", "nexus", "--site", "site-a")
    assert_cli_error(result, code, "site-a", expected)
