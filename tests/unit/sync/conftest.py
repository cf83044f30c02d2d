"""Fixtures for the template update tests: a publisher, a real HTTP(S)
server on 127.0.0.1 with fault knobs, and a gate configuration."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_gate.config import GateConfig, StoreConfig, SyncConfig
from edge_gate.fingerprint import FingerprintTemplate
from edge_gate.iris import IrisTemplate
from edge_gate.store import DocumentRecord, EnrolmentRecord, generate_key_file
from edge_gate.sync import Publisher


def fingerprint_bytes(seed: int, minutiae: int = 6) -> bytes:
    """Return a valid fingerprint template with random minutiae."""
    rng = np.random.default_rng(seed)
    points = np.column_stack(
        [
            rng.uniform(0, 255, minutiae),
            rng.uniform(0, 287, minutiae),
            rng.uniform(0, 2 * np.pi, minutiae),
            rng.integers(0, 2, minutiae),
            rng.uniform(0, 1, minutiae),
        ]
    ).astype(np.float32)
    return FingerprintTemplate(points, width=256, height=288, quality=0.8).to_bytes()


def iris_bytes(seed: int) -> bytes:
    """Return a valid iris template (784 bytes) with random bits."""
    rng = np.random.default_rng(seed)
    code = rng.random((16, 128, 2)) < 0.5
    mask = rng.random((16, 128)) < 0.9
    return IrisTemplate(code=code, mask=mask, quality=0.9).to_bytes()


def make_record(
    number: int,
    *,
    watchlisted: bool = False,
    revoked: bool = False,
    with_document: bool = True,
    template_bytes: int = 64,
) -> EnrolmentRecord:
    """Build a deterministic record with distinct, valid templates.

    The fingerprint templates take about ``template_bytes`` bytes each (48
    to 1,040: at least the 4 minutiae that a gate needs); the iris templates
    always take 784.
    """
    documents = (
        (DocumentRecord("UTO", f"D{number:08d}", datetime.date(2031, 1, 1)),)
        if with_document
        else ()
    )
    minutiae = min(128, max(4, (template_bytes - 16) // 8))
    return EnrolmentRecord(
        enrolment_id=f"E{number:06d}",
        person_id=f"P{number:06d}",
        documents=documents,
        enrolment_expiry=datetime.date(2030, 6, 30),
        watchlisted=watchlisted,
        revoked=revoked,
        fingerprints={
            "right_index": fingerprint_bytes(4 * number, minutiae),
            "left_index": fingerprint_bytes(4 * number + 1, minutiae),
        },
        irises={
            "left": iris_bytes(4 * number + 2),
            "right": iris_bytes(4 * number + 3),
        },
    )


@pytest.fixture(name="fingerprint_bytes")
def fingerprint_bytes_fixture() -> Callable[..., bytes]:
    """Return :func:`fingerprint_bytes`, because test modules cannot import conftest."""
    return fingerprint_bytes


@pytest.fixture(name="iris_bytes")
def iris_bytes_fixture() -> Callable[[int], bytes]:
    """Return :func:`iris_bytes`, because test modules cannot import conftest."""
    return iris_bytes


@dataclass
class FaultyServer:
    """A ThreadingHTTPServer serving a folder, with one fault at a time.

    ``fault`` is None, ``"500"``, ``"hang"`` (no answer until the test
    ends), ``"drip"`` (one byte every 0.2 s), ``"close"`` (sends half the
    body, then closes) or ``"oversize"`` (appends bytes to the body). It
    applies to paths containing ``fault_path``. ``substitutions`` maps a
    served path suffix to other bytes to send instead (an attacker between
    gate and server).
    """

    root: Path
    url: str = ""
    fault: str | None = None
    fault_path: str = ""
    substitutions: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    httpd: Any = None


def _handler_for(server_state: FaultyServer) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(server_state.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def do_GET(self) -> None:
            server_state.requests.append(self.path)
            for suffix, data in server_state.substitutions.items():
                if self.path.endswith(suffix):
                    self._send(200, data)
                    return
            fault = server_state.fault
            if fault is None or server_state.fault_path not in self.path:
                super().do_GET()
                return
            if fault == "500":
                self._send(500, b"internal error")
            elif fault == "hang":
                server_state.release.wait(30)
            elif fault == "drip":
                self._drip()
            elif fault in ("close", "oversize"):
                body = self._file_bytes()
                if body is None:
                    self._send(404, b"not found")
                elif fault == "close":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self._send(200, body + b"\0" * 4096)

        def _drip(self) -> None:
            """Send the body one byte every 0.2 s (slow retrieval)."""
            body = self._file_bytes() or b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for index in range(len(body)):
                if server_state.release.wait(0.2):
                    return
                try:
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                except OSError:
                    return

        def _file_bytes(self) -> bytes | None:
            path = Path(self.translate_path(self.path))
            return path.read_bytes() if path.is_file() else None

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_server(publisher: Publisher) -> Iterator[FaultyServer]:
    """Serve the publisher's repository over HTTP on 127.0.0.1."""
    yield from _serve(publisher.repository_dir, None)


def _serve(root: Path, tls: ssl.SSLContext | None) -> Iterator[FaultyServer]:
    state = FaultyServer(root=root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    httpd.daemon_threads = True
    scheme = "http"
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    state.httpd = httpd
    state.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http"
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@dataclass(frozen=True)
class TestCertificate:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""

    cert_file: Path
    key_file: Path


def make_certificate(folder: Path) -> TestCertificate:
    """Generate a self-signed certificate valid for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-gate test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "server.pem"
    key_file = folder / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TestCertificate(cert_file, key_file)


@pytest.fixture
def certificate_factory() -> Any:
    """The function :func:`make_certificate`."""
    return make_certificate


@pytest.fixture
def certificate(tmp_path: Path) -> TestCertificate:
    """A fresh self-signed certificate for 127.0.0.1."""
    folder = tmp_path / "tls"
    folder.mkdir()
    return make_certificate(folder)


@pytest.fixture
def https_server(
    publisher: Publisher, certificate: TestCertificate
) -> Iterator[FaultyServer]:
    """Serve the publisher's repository over HTTPS on 127.0.0.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    yield from _serve(publisher.repository_dir, context)


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    """A freshly initialised publisher in a temporary folder."""
    return Publisher.init(tmp_path / "publisher")


@pytest.fixture
def gate_dir(tmp_path: Path) -> Path:
    """A gate's folder with its own template key."""
    folder = tmp_path / "gate"
    folder.mkdir()
    generate_key_file(folder / "template.key")
    return folder


def gate_config(
    gate_dir: Path, publisher: Publisher, url: str, **sync: Any
) -> GateConfig:
    """Build a gate configuration that syncs from ``url``."""
    settings: dict[str, Any] = {
        "repository_url": url,
        "fleet_key_file": str(publisher.fleet_key_path),
        "trusted_root_file": str(publisher.trusted_root_path),
        "timeout_s": 2.0,
        "download_timeout_s": 10.0,
        "retries": 0,
        "backoff_s": 0.0,
    }
    settings.update(sync)
    return GateConfig(
        store=StoreConfig(
            state_dir=str(gate_dir / "state"),
            key_file=str(gate_dir / "template.key"),
        ),
        sync=dataclasses.replace(SyncConfig(), **settings),
    )


@pytest.fixture
def records() -> Any:
    """The record factory :func:`make_record` (tests cannot import conftest)."""
    return make_record


@pytest.fixture
def configure(gate_dir: Path, publisher: Publisher) -> Any:
    """Return ``configure(url, **sync_settings) -> GateConfig`` for this gate."""

    def build(url: str, **sync: Any) -> GateConfig:
        return gate_config(gate_dir, publisher, url, **sync)

    return build


def write_gate_toml(path: Path, config: GateConfig, **sync: float) -> Path:
    """Write the gate's ``[store]`` and ``[sync]`` settings for ``edge-gate sync``.

    ``sync`` adds or overrides ``[sync]`` keys. Unless given, retries are
    off and the request timeout is 2 s.
    """
    settings: dict[str, float] = {"retries": 0, "timeout_s": 2.0, **sync}
    extra = "".join(f"{key} = {value!r}\n" for key, value in settings.items())
    path.write_text(
        f"""
[store]
state_dir = "{config.store.state_dir}"
key_file = "{config.store.key_file}"

[sync]
repository_url = "{config.sync.repository_url}"
fleet_key_file = "{config.sync.fleet_key_file}"
trusted_root_file = "{config.sync.trusted_root_file}"
{extra}"""
    )
    return path


@pytest.fixture
def gate_toml() -> Any:
    """The writer :func:`write_gate_toml` (tests cannot import conftest)."""
    return write_gate_toml
