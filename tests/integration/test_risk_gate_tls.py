"""``patchrisk risk-gate`` over HTTPS: the real predictor serving TLS on 127.0.0.1 with a certificate
made by the test (its own CA, so nothing trusts it by default), for both protocols."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from patchrisk_serving.catboost_predictor.testing import free_port, predictor_command, stop
from serving_support import MODEL_NAME, load_bundle, trained_model_dir

from patchrisk.datagen import generate_rows
from tests.cli_support import Ran, run_patchrisk

pytestmark = pytest.mark.integration
CA_ENV = "PATCHRISK_RISK_GATE_CA_BUNDLE"


def write_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate it signs for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject: str, issuer_name, key, signing_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "patchrisk test CA")])
    ca = build("patchrisk test CA", ca_name, ca_key, ca_key, [(x509.BasicConstraints(ca=True, path_length=None), True),
                                                              (x509.KeyUsage(True, False, False, False, False, True, True,
                                                                             False, False), True)])
    server = build("127.0.0.1", ca_name, server_key, ca_key, [
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
         False),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem))
    (directory / "server.key").write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                    serialization.NoEncryption()))
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return trained_model_dir(tmp_path_factory.mktemp("gate-tls"))


@pytest.fixture(scope="module")
def https_server(model_dir, tmp_path_factory):
    """The predictor with KServe's own --ssl_certfile/--ssl_keyfile: (https URL, CA bundle)."""
    tls = tmp_path_factory.mktemp("tls")
    ca, cert, key = write_ca_and_server_cert(tls)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    log = tls / "predictor.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(predictor_command(model_dir, port, MODEL_NAME,
                                                     (f"--ssl_certfile={cert}", f"--ssl_keyfile={key}")),
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        trusted = ssl.create_default_context(cafile=str(ca))
        for _ in range(450):
            if process.poll() is not None:
                raise RuntimeError(f"predictor exited {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/v2/models/{MODEL_NAME}/ready", verify=trusted, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError(f"predictor at {url} not ready:\n{log.read_text()[-3000:]}")
        yield url, ca
    finally:
        stop(process)


@pytest.fixture(scope="module")
def patches(model_dir, tmp_path_factory) -> Path:
    bundle = load_bundle(model_dir)
    df = generate_rows(bundle.spec, 3, seed=5)
    path = tmp_path_factory.mktemp("patches") / "patches.json"
    path.write_text(df[[bundle.spec.id_column, *bundle.spec.feature_names]].to_json(orient="records"))
    return path


@pytest.fixture
def gate(capsys):
    """`patchrisk risk-gate` in this process (the predictor is a process of its own), in this environment
    without the CA variable, plus ``env`` for that run only."""
    def run(patches: Path, url: str, protocol: str, *args: str, env: dict | None = None) -> Ran:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv(CA_ENV, raising=False)
            for key, value in (env or {}).items():
                mp.setenv(key, value)
            return run_patchrisk(["risk-gate", patches, "--endpoint", url, "--protocol", protocol, "--threshold", "1",
                                  "--retries", "0", "--json", *args], capsys, mp)
    return run


def scored(result: Ran) -> int:
    assert result.exit_code == 0, result.stdout + result.stderr
    return len(json.loads(result.stdout)["patches"])


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_https_endpoint_with_its_ca_bundle_scores_every_patch(gate, https_server, patches, protocol):
    url, ca = https_server
    assert scored(gate(patches, url, protocol, "--ca-bundle", str(ca))) == 3


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_ca_bundle_can_come_from_the_environment(gate, https_server, patches, protocol):
    url, ca = https_server
    assert scored(gate(patches, url, protocol, env={CA_ENV: str(ca)})) == 3


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_an_untrusted_certificate_fails_with_exit_2_naming_the_problem(gate, https_server, patches, protocol):
    url, _ = https_server
    result = gate(patches, url, protocol)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "certificate" in (result.stdout + result.stderr).lower()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_insecure_skips_verification(gate, https_server, patches, protocol):
    url, _ = https_server
    result = gate(patches, url, protocol, "--insecure")
    assert scored(result) == 3
    assert "not verified" in result.stderr


def test_a_missing_ca_bundle_is_a_usage_error(gate, https_server, patches, tmp_path):
    url, _ = https_server
    result = gate(patches, url, "v1", "--ca-bundle", str(tmp_path / "nope.pem"))
    assert result.exit_code == 2 and "--ca-bundle" in result.stderr and "Traceback" not in result.stderr
