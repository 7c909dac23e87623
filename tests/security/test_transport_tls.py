"""Security profiles 2 and 3 on real TLS sockets, with a test PKI made here: daphne's own TLS endpoint, and
deploy/nginx.conf (Debian's nginx, installed by scripts/test-services.sh) terminating TLS and verifying station
certificates against the test CA and its CRL in front of the same daphne. One daphne and one nginx per module."""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from security.models import SecurityEvent
from stations.models import ChargingStation, Connection
from tests import conftest
from tests.conftest import LOG_DIR, ROOT, LiveServer, free_port, wait_for_health, wait_until
from tests.ocpp_client import RawStation, basic_auth, run
from tests.security import tlskit

pytestmark = pytest.mark.live

PASSWORD = "correct-horse-battery-42"
PROXY_ADDR = "127.0.0.2"  # nginx connects to daphne from here: the one trusted proxy; tests connect from 127.0.0.1
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


class Stack:
    def __init__(self, pki: Path, daphne: LiveServer, tls_port: int, nginx_http: int, nginx_https: int) -> None:
        self.pki, self.daphne, self.tls_port = pki, daphne, tls_port
        self.nginx_http, self.nginx_https = nginx_http, nginx_https
        self.certs: dict[str, tuple[Path, Path]] = {}

    @property
    def ca_file(self) -> Path:
        return self.pki / "csms-ca.crt"


def _start_daphne(pki: Path, tls_port: int) -> LiveServer:
    port = free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "csms.settings",
        "DATABASE_URL": conftest.test_database_url(),
        "CSMS_DB_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
        "CSMS_MESSAGE_LOG_FLUSH_MS": "20",
        "CSMS_SECURITY_EVENT_FLUSH_MS": "50",
        "CSMS_TRUSTED_PROXIES": f"{PROXY_ADDR}/32",
    }
    env.pop("CSMS_TEST_DB_NAME", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    from security.tls import daphne_endpoint

    endpoint = daphne_endpoint(
        port=tls_port, interface="127.0.0.1", cert_file=str(pki / "daphne.crt"), key_file=str(pki / "daphne.key")
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"daphne-tls-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-e", endpoint,
         "--websocket_timeout", "-1", "--websocket_connect_timeout", "30", "csms.asgi:application"],
        cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = LiveServer(port, process, log_path)
    wait_for_health(server)
    return server


def _nginx_conf(pki: Path, upstream_port: int, http_port: int, https_port: int) -> str:
    """deploy/nginx.conf with this test's paths and ports (and the proxy's own source address)."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    replacements = {
        "/etc/nginx/ca/ca.pem": f"{pki}/csms-ca.crt",
        "/etc/nginx/ca/crl.pem": f"{pki}/csms-ca.crl",
        "/etc/nginx/tls/": f"{pki}/",
        "server web:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "pid /tmp/nginx.pid;": f"pid {pki}/nginx.pid;",
        "proxy_http_version 1.1;": f"proxy_http_version 1.1;\n    proxy_bind {PROXY_ADDR};",
        "worker_processes auto;": "worker_processes 1;",
        "error_log /dev/stderr warn;": f"error_log {pki}/error.log info;",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    temp = "".join(f"    {d}_temp_path {pki}/{d};\n" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return text.replace("http {\n", "http {\n" + temp, 1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[Stack]:
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/test-services.sh installs Debian's nginx)")
    pki = tmp_path_factory.mktemp("pki")
    ca = tlskit.make_ca()
    (pki / "csms-ca.crt").write_bytes(ca.cert.public_bytes(tlskit.serialization.Encoding.PEM))
    tlskit.issue(ca, "localhost", server=True, kind="ecdsa").write(pki, "daphne")
    tlskit.issue(ca, "localhost", server=True, kind="rsa").write(pki, "server-rsa")
    tlskit.issue(ca, "localhost", server=True, kind="ecdsa").write(pki, "server-ecdsa")
    other_ca = tlskit.make_ca("Some Other CA")
    certs = {
        "CS-P3": tlskit.issue(ca, "CS-P3"),
        "wrong-ca": tlskit.issue(other_ca, "CS-P3"),
        "expired": tlskit.issue(ca, "CS-P3", expired=True),
        "revoked": tlskit.issue(ca, "CS-P3"),
        "other-cn": tlskit.issue(ca, "CS-OTHER"),
        "upgrade": tlskit.issue(ca, "CS-UP"),
    }
    (pki / "csms-ca.crl").write_bytes(tlskit.make_crl(ca, [certs["revoked"].cert]))
    tls_port, http_port, https_port = free_port(), free_port(), free_port()
    daphne = _start_daphne(pki, tls_port)
    conf = pki / "nginx.conf"
    conf.write_text(_nginx_conf(pki, daphne.port, http_port, https_port))
    nginx = subprocess.Popen(
        [NGINX, "-p", str(pki), "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    s = Stack(pki, daphne, tls_port, http_port, https_port)
    s.certs = {name: issued.write(pki, f"station-{name}") for name, issued in certs.items()}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), __import__("socket").create_connection(("127.0.0.1", https_port), 0.5):
            break
        if nginx.poll() is not None:
            raise RuntimeError(f"nginx exited: {nginx.stderr.read().decode() if nginx.stderr else ''}")
        time.sleep(0.05)
    yield s
    nginx.terminate()
    daphne.stop()
    nginx.wait(10)


@contextlib.asynccontextmanager
async def connect(
    url: str, identity: str, *, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[RawStation]:
    ws = await websockets.connect(
        f"{url}/ocpp/{identity}",
        subprotocols=[Subprotocol("ocpp2.0.1")],
        additional_headers=headers,
        ssl=context,
        open_timeout=10,
    )
    try:
        yield RawStation(ws)
    finally:
        await ws.close()


def handshake(url: str, identity: str, **kwargs: Any) -> int:
    """101 when the station got connected (and answered its BootNotification), else the HTTP status."""

    async def scenario() -> int:
        try:
            async with connect(url, identity, **kwargs) as st:
                reply = await st.boot()
                assert reply[0] == 3, reply
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return run(scenario())


def refused_reason(identity: str) -> str:
    assert wait_until(lambda: Connection.objects.filter(identity=identity, outcome="refused").exists())
    return Connection.objects.filter(identity=identity, outcome="refused").latest("pk").reason


def register(identity: str, profile: int, password: str | None = PASSWORD, **fields: Any) -> ChargingStation:
    station = ChargingStation.objects.create(identity=identity, security_profile=profile, **fields)
    if password:
        station.set_password(password)
        station.save()
    return station


# --- Profile 2 ---------------------------------------------------------------------------------------------------


def test_profile_2_over_daphnes_own_tls_is_accepted_and_plain_is_refused(stack: Stack, transactional_db: None) -> None:
    register("CS-P2", 2)
    context = tlskit.client_context(stack.ca_file)
    auth = basic_auth("CS-P2", PASSWORD)
    assert handshake(f"wss://127.0.0.1:{stack.tls_port}", "CS-P2", context=context, headers=auth) == 101
    assert handshake(stack.daphne.ws_url, "CS-P2", headers=auth) == 403
    assert refused_reason("CS-P2") == "plain connection: security profile 2 requires TLS (wss://)"
    assert wait_until(
        lambda: SecurityEvent.objects.filter(identity="CS-P2", type="CsmsInsecureHandshake").exists(), timeout_s=5
    )
    event = SecurityEvent.objects.get(identity="CS-P2", type="CsmsInsecureHandshake")
    assert event.tech_info == "plain connection: security profile 2 requires TLS (wss://)"
    assert event.remote_addr == "127.0.0.1"


def test_profile_2_via_nginx_is_accepted_over_tls_and_refused_over_plain(stack: Stack, transactional_db: None) -> None:
    register("CS-P2N", 2)
    auth = basic_auth("CS-P2N", PASSWORD)
    context = tlskit.client_context(stack.ca_file)
    assert handshake(f"wss://127.0.0.1:{stack.nginx_https}", "CS-P2N", context=context, headers=auth) == 101
    accepted = Connection.objects.get(identity="CS-P2N", outcome="accepted")
    assert accepted.remote_addr.startswith("127.0.0.1:")  # the station's address, from nginx's X-Forwarded-For
    assert handshake(f"ws://127.0.0.1:{stack.nginx_http}", "CS-P2N", headers=auth) == 403
    assert refused_reason("CS-P2N") == "plain connection: security profile 2 requires TLS (wss://)"


def test_a_client_trusting_another_ca_refuses_the_server(stack: Stack, transactional_db: None, tmp_path: Path) -> None:
    register("CS-P2W", 2)
    other = tlskit.make_ca("Not the CSMS CA")
    (tmp_path / "other.crt").write_bytes(other.cert.public_bytes(tlskit.serialization.Encoding.PEM))
    context = tlskit.client_context(tmp_path / "other.crt")
    for port in (stack.tls_port, stack.nginx_https):
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(f"wss://127.0.0.1:{port}", "CS-P2W", context=context, headers=basic_auth("CS-P2W", PASSWORD))
    assert not Connection.objects.filter(identity="CS-P2W").exists()


@pytest.mark.parametrize(
    ("cipher", "key_type"),
    [("ECDHE-ECDSA-AES128-GCM-SHA256", "EC"), ("ECDHE-ECDSA-AES256-GCM-SHA384", "EC"),
     ("AES128-GCM-SHA256", "RSA"), ("AES256-GCM-SHA384", "RSA")],
)  # fmt: skip
def test_nginx_serves_the_specifications_cipher_suites_with_rsa_and_ecdsa_certificates(
    stack: Stack, cipher: str, key_type: str
) -> None:
    context = tlskit.client_context(stack.ca_file, ciphers=cipher, max_version=ssl.TLSVersion.TLSv1_2)
    with (
        __import__("socket").create_connection(("127.0.0.1", stack.nginx_https), 5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2"
        assert (tls.cipher() or ("",))[0] == cipher
        from cryptography import x509

        cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
        assert key_type in type(cert.public_key()).__name__


def test_tls_below_1_2_is_refused_by_both_endpoints(stack: Stack) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(stack.ca_file))
    with pytest.warns(DeprecationWarning):
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    for port in (stack.tls_port, stack.nginx_https):
        with __import__("socket").create_connection(("127.0.0.1", port), 5) as raw, pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="localhost")


# --- Profile 3 ---------------------------------------------------------------------------------------------------


def p3(stack: Stack, cert: str | None, *, url: str | None = None, headers: dict[str, str] | None = None) -> int:
    context = tlskit.client_context(stack.ca_file, cert=stack.certs[cert] if cert else None)
    return handshake(url or f"wss://127.0.0.1:{stack.nginx_https}", "CS-P3", context=context, headers=headers)


def test_profile_3_with_the_right_certificate_is_accepted_without_a_password(
    stack: Stack, transactional_db: None
) -> None:
    register("CS-P3", 3, password=None)
    assert p3(stack, "CS-P3") == 101
    assert Connection.objects.filter(identity="CS-P3", outcome="accepted").count() == 1


@pytest.mark.parametrize("cert", ["wrong-ca", "expired", "revoked"])
def test_profile_3_certificates_nginx_cannot_verify_are_refused_before_the_csms(
    stack: Stack, transactional_db: None, cert: str
) -> None:
    register("CS-P3", 3, password=None)
    assert p3(stack, cert) == 400  # nginx: "The SSL certificate error"
    assert not Connection.objects.filter(identity="CS-P3").exists()
    reason = {"wrong-ca": "unable to verify the first certificate", "expired": "certificate has expired",
              "revoked": "certificate revoked"}[cert]  # fmt: skip
    assert wait_until(lambda: reason in (stack.pki / "error.log").read_text(errors="replace"), timeout_s=5)


def test_profile_3_with_another_stations_certificate_is_refused_for_its_cn(
    stack: Stack, transactional_db: None
) -> None:
    register("CS-P3", 3, password=None)
    assert p3(stack, "other-cn") == 403
    assert refused_reason("CS-P3") == "client certificate CN 'CS-OTHER' does not match the identity"


def test_profile_3_without_a_certificate_or_over_plain_is_refused(stack: Stack, transactional_db: None) -> None:
    register("CS-P3", 3, password=None)
    assert p3(stack, None) == 403
    assert refused_reason("CS-P3") == (
        "no client certificate: security profile 3 requires one (verified by the TLS terminator)"
    )
    assert handshake(f"ws://127.0.0.1:{stack.nginx_http}", "CS-P3") == 403
    assert refused_reason("CS-P3") == "plain connection: security profile 3 requires TLS (wss://)"


def test_forged_client_certificate_headers_from_a_non_proxy_address_are_ignored(
    stack: Stack, transactional_db: None
) -> None:
    register("CS-P3", 3, password=None)
    pem = stack.certs["CS-P3"][0].read_text()
    forged = {
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-Cert": __import__("urllib.parse").parse.quote(pem),
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": PROXY_ADDR,
    }
    # Straight to daphne from 127.0.0.1 (not CSMS_TRUSTED_PROXIES): plain, and over daphne's own TLS.
    assert handshake(stack.daphne.ws_url, "CS-P3", headers=forged) == 403
    assert refused_reason("CS-P3") == "plain connection: security profile 3 requires TLS (wss://)"
    context = tlskit.client_context(stack.ca_file)
    assert handshake(f"wss://127.0.0.1:{stack.tls_port}", "CS-P3", context=context, headers=forged) == 403
    assert refused_reason("CS-P3") == (
        "no client certificate: security profile 3 requires one (verified by the TLS terminator)"
    )
    # Through nginx, headers a client sends are replaced by nginx's own: no certificate shown, none believed.
    assert p3(stack, None, headers=forged) == 403
    assert Connection.objects.filter(identity="CS-P3", outcome="accepted").count() == 0
    # Nor the forged address: every refusal is recorded with the client's own.
    addresses = set(Connection.objects.filter(identity="CS-P3").values_list("remote_addr", flat=True))
    assert len(addresses) == 3 and all(a.startswith("127.0.0.1:") for a in addresses), addresses


# --- Upgrade 2 -> 3: both accepted until the first connection on the new profile -----------------------------


def test_profile_upgrade_accepts_old_and_new_until_the_first_connection_on_the_new_one(
    stack: Stack, transactional_db: None
) -> None:
    register("CS-UP", 2, pending_security_profile=3)
    auth = basic_auth("CS-UP", PASSWORD)
    tls = tlskit.client_context(stack.ca_file)
    with_cert = tlskit.client_context(stack.ca_file, cert=stack.certs["upgrade"])
    nginx = f"wss://127.0.0.1:{stack.nginx_https}"
    assert handshake(nginx, "CS-UP", context=tls, headers=auth) == 101  # still the old profile
    station = ChargingStation.objects.get(identity="CS-UP")
    assert (station.security_profile, station.pending_security_profile) == (2, 3)
    assert handshake(nginx, "CS-UP", context=with_cert) == 101  # the first connection on profile 3
    station.refresh_from_db()
    assert (station.security_profile, station.pending_security_profile) == (3, None)
    assert handshake(nginx, "CS-UP", context=tls, headers=auth) == 403  # profile 2 no longer enough
    assert refused_reason("CS-UP") == (
        "no client certificate: security profile 3 requires one (verified by the TLS terminator)"
    )
