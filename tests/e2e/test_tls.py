"""TLS on the real cluster, each claim proven by an attempt that must fail:
replication verifies the primary's certificate, a plaintext client is
refused when TLS is required, clones run over TLS and refuse a donor whose
certificate another CA issued; a renewed certificate is loaded without a
restart, under a concurrent writer and when only the Secret changes; all of it on 10.11 and again after the upgrade to 11.8."""
import base64
import datetime
import re
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from tests.harness import drop_namespaces, fresh_namespaces, image, pod_exec, run_playbook, sql, start_client, trust_cluster_ca, wait_until
from tests.e2e.writes import Writer, check_nothing_lost, create_events_table, recorded_primary

NS = "tls"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "mariadb_autopilot": False}
PODS = ["mysql-0", "mysql-1", "mysql-2"]
MBSTREAM_MAGIC = "XBSTCK01"


def play(name, **extra):
    return run_playbook(name, dict(BASE, **extra))


def secret(core, name):
    return {k: base64.b64decode(v).decode() for k, v in core.read_namespaced_secret(name, NS).data.items()}


@pytest.fixture(scope="module")
def runner(api, core):
    fresh_namespaces(core, NS)
    play("deploy.yml", replicas=3, mariadb_tls_required=True).check()
    runner = start_client(core, api, NS)
    trust_cluster_ca(runner, core, NS)
    create_events_table(runner)
    yield runner
    drop_namespaces(core, NS)


def in_container(api, container, pod, script, *args):
    """Run a bash script (in a subshell: a sourced pod script may exit) in a
    container; returns (exit code, stdout+stderr)."""
    out = pod_exec(api, NS, container).run(pod, ["bash", "-c", "(%s) 2>&1\necho \"rc=$?\"" % script, "-"] + list(args),
                                           timeout=60)
    found = re.search(r"rc=(\d+)\s*$", out)
    return int(found.group(1)), out[:found.start()]


def local_sql(api, pod, query, *options):
    return pod_exec(api, NS, "sidecar").run(pod, ["bash", "-c", '. /opt/mariadb-k8s/common.sh; sql "$@" -e "$0"', query]
                                            + list(options))


def replica_channels(api, pods):
    """Each replica's SSL fields of SHOW SLAVE STATUS."""
    channels = {}
    for pod in pods:
        status = local_sql(api, pod, "SHOW SLAVE STATUS\\G")
        channels[pod] = {key: re.search(r"^\s*%s: (.*)$" % key, status, re.M).group(1).strip()
                         for key in ("Slave_IO_Running", "Master_SSL_Allowed", "Master_SSL_Verify_Server_Cert")}
    return channels


def assert_replication_verifies_tls(api, core, replicas):
    primary = core.read_namespaced_config_map("mysql-topology", NS).data["primary"]
    expected = {"Slave_IO_Running": "Yes", "Master_SSL_Allowed": "Yes", "Master_SSL_Verify_Server_Cert": "Yes"}
    pods = ["mysql-%d" % i for i in range(replicas)]
    assert replica_channels(api, [p for p in pods if p != primary]) == {p: expected for p in pods if p != primary}
    # Plaintext replication would be refused: TCP connections need TLS.
    assert local_sql(api, primary, "SELECT @@require_secure_transport").split()[-1] == "1"


def test_replication_verifies_the_primarys_certificate(api, core, runner):
    assert_replication_verifies_tls(api, core, 3)
    # verify.yml fails on a replica that does not verify the primary's certificate.
    assert ", TLS" in play("verify.yml").check().output


def test_a_plaintext_client_is_refused_and_a_verified_one_served(runner):
    # The client's options without the TLS ones: refused in plaintext (10.11
    # answers 1045, access denied), accepted with TLS, the rest unchanged.
    attempt = ("grep -v '^ssl' /tmp/client.cnf > /tmp/plain.cnf; "
               "mariadb --defaults-file=/tmp/plain.cnf %s -h mysql-primary -N -e 'SELECT 1' 2>&1; echo rc=$?")
    plaintext = runner.run("client", ["bash", "-c", attempt % "--skip-ssl"])
    assert re.search(r"ERROR (1045|3159)", plaintext) and not plaintext.strip().endswith("rc=0"), plaintext
    assert runner.run("client", ["bash", "-c", attempt % "--ssl"]).split() == ["1", "rc=0"]
    # The same client with TLS, verifying the certificate for the name mysql-primary.
    assert sql(runner, "mysql-primary", "SHOW STATUS LIKE 'Ssl_version'").split()[-1].startswith("TLSv1.")
    assert sql(runner, "mysql-read", "SHOW STATUS LIKE 'Ssl_version'").split()[-1].startswith("TLSv1.")


def test_a_clone_runs_over_tls_and_the_clone_port_speaks_only_tls(api, core, runner):
    play("deploy.yml", replicas=4).check()
    log = core.read_namespaced_pod_log("mysql-3", NS, container="clone")
    assert "cloning from mysql-2.mysql:3307 over TLS" in log and "clone complete" in log, log
    # The right token in plaintext gets no backup.
    code, out = in_container(api, "sidecar", "mysql-0", '. /opt/mariadb-k8s/common.sh; read_clone_token t; '
                             'printf "%s\\n" "$t" | timeout 15 socat -t 5 - TCP:mysql-1.mysql:3307 | head -c 4096 | base64 -w0')
    received = base64.b64decode(out.strip() or "")
    assert MBSTREAM_MAGIC.encode() not in received and len(received) < 100, (code, received[:200])


def certificate(name, issuer_key=None, issuer=None):
    """A key and a certificate for DNS name `name`, self-signed as a CA when
    no issuer is given. PEM strings."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem_key.decode(), cert.public_bytes(serialization.Encoding.PEM).decode(), key, cert


def start_fake_donor(api, core, key_pem, cert_pem):
    """A pod behind the Service fake-donor that speaks TLS on 3307 with this
    certificate and records the first line a clone sends (the token)."""
    if core.list_namespaced_pod(NS, field_selector="metadata.name=fake-donor").items:
        core.delete_namespaced_pod("fake-donor", NS, grace_period_seconds=0)
        wait_until("old fake donor gone", lambda: not core.list_namespaced_pod(NS, field_selector="metadata.name=fake-donor").items)
    core.create_namespaced_pod(NS, client.V1Pod(
        metadata=client.V1ObjectMeta(name="fake-donor", labels={"fake-donor": "true"}),
        spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[client.V1Container(
            name="donor", image=image("10.11"), image_pull_policy="IfNotPresent",
            command=["bash", "-c", 'printf "%s" "$KEY" > /tmp/key.pem; printf "%s" "$CERT" > /tmp/cert.pem; '
                     'exec socat OPENSSL-LISTEN:3307,cert=/tmp/cert.pem,key=/tmp/key.pem,verify=0,reuseaddr,fork '
                     'SYSTEM:"head -n 1 > /tmp/received; echo not-a-backup"'],
            env=[client.V1EnvVar(name="KEY", value=key_pem), client.V1EnvVar(name="CERT", value=cert_pem)])])))
    if not core.list_namespaced_service(NS, field_selector="metadata.name=fake-donor").items:
        core.create_namespaced_service(NS, client.V1Service(
            metadata=client.V1ObjectMeta(name="fake-donor"),
            spec=client.V1ServiceSpec(selector={"fake-donor": "true"}, ports=[client.V1ServicePort(port=3307)])))
    wait_until("fake donor running", lambda: core.read_namespaced_pod("fake-donor", NS).status.phase == "Running")
    time.sleep(1)


def clone_from_fake_donor(api):
    """clone.sh's receive step in mysql-1's sidecar, against fake-donor."""
    return in_container(api, "sidecar", "mysql-1", '. /opt/mariadb-k8s/clone.sh; rm -rf /tmp/fake-clone; '
                        'mkdir /tmp/fake-clone; receive_stream fake-donor /tmp/fake-clone')


def received_token(api):
    try:
        return pod_exec(api, NS, "donor").run("fake-donor", ["cat", "/tmp/received"]).strip()
    except Exception:  # ExecError: nothing received
        return ""


def test_a_donor_with_a_certificate_from_another_ca_is_refused(api, core, runner):
    _, _, stranger_ca_key, stranger_ca = certificate("another CA")
    key_pem, cert_pem, _, _ = certificate("fake-donor", stranger_ca_key, stranger_ca)
    start_fake_donor(api, core, key_pem, cert_pem)
    code, out = clone_from_fake_donor(api)
    assert code != 0 and "certificate verify failed" in out, out
    assert received_token(api) == "", "the clone sent its token to a donor it could not verify"

    # The control: the same donor with a certificate from the cluster's CA is trusted.
    ca = secret(core, "mysql-tls-ca")
    ours_key = serialization.load_pem_private_key(ca["ca.key"].encode(), None)
    key_pem, cert_pem, _, _ = certificate("fake-donor", ours_key, x509.load_pem_x509_certificate(ca["ca.crt"].encode()))
    start_fake_donor(api, core, key_pem, cert_pem)
    code, out = clone_from_fake_donor(api)
    assert code != 0 and "certificate verify failed" not in out, out  # not a backup, but a trusted peer
    token = secret(core, "mysql-credentials")["clone-token"]
    assert received_token(api) == token


def served_not_before(api, pod):
    """The certificate a pod's server presents: asked over a TLS session
    (the pod's own clients skip TLS on the socket)."""
    return local_sql(api, pod, "SHOW STATUS LIKE 'Ssl_server_not_before'", "--ssl", "-N").split("\t")[-1].strip()


def clone_port_serial(api, pod):
    """The serial number of the certificate the pod's clone port presents,
    asked from another pod's sidecar (the NetworkPolicy lets only the
    cluster's pods in)."""
    script = ("import socket, ssl, sys; c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; "
              "c.verify_mode = ssl.CERT_NONE; s = c.wrap_socket(socket.create_connection((sys.argv[1], 3307), 5)); "
              "print(ssl.DER_cert_to_PEM_cert(s.getpeercert(True)))")
    asker = "mysql-1" if pod == "mysql-0" else "mysql-0"
    try:
        pem = pod_exec(api, NS, "sidecar").run(asker, ["python3", "-c", script, pod + ".mysql"])
    except ExecError as exc:
        # The listener restarts to read the new certificate (about a second).
        if "Connection refused" in str(exc):
            return None
        raise
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def lives(core):
    """Each pod's uid and its containers' restart counts: unchanged when no pod restarted."""
    return {pod.metadata.name: (pod.metadata.uid, sorted((c.name, c.restart_count) for c in pod.status.container_statuses))
            for pod in core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=mariadb").items}


def test_a_certificate_changed_only_in_the_secret_is_loaded_by_the_running_servers(api, core, runner, report):
    """As cert-manager renews: the Secret changes, no playbook runs. Each
    pod's sidecar sees the mounted files change and loads them."""
    pods = ["mysql-%d" % i for i in range(4)]
    before, alive = {pod: served_not_before(api, pod) for pod in pods}, lives(core)
    current = x509.load_pem_x509_certificate(secret(core, "mysql-tls")["tls.crt"].encode())
    names = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ca = secret(core, "mysql-tls-ca")
    ca_key = serialization.load_pem_private_key(ca["ca.key"].encode(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(current.subject).issuer_name(current.issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=2)).add_extension(names, critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = {"tls.crt": cert.public_bytes(serialization.Encoding.PEM).decode(),
           "tls.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()}
    started = time.monotonic()
    core.patch_namespaced_secret("mysql-tls", NS, {"data": {k: base64.b64encode(v.encode()).decode() for k, v in pem.items()}})
    start = cert.not_valid_before_utc
    wanted = "%s %d %s GMT" % (start.strftime("%b"), start.day, start.strftime("%H:%M:%S %Y"))  # OpenSSL's form
    wait_until("every server presents the certificate put in the Secret", lambda: all(
        " ".join(served_not_before(api, pod).split()) == wanted for pod in pods), timeout=240, interval=5)
    seconds = time.monotonic() - started
    assert all(" ".join(before[pod].split()) != wanted for pod in pods), before  # control: another one before
    wait_until("every clone port presents it", lambda: all(clone_port_serial(api, pod) == cert.serial_number for pod in pods),
               timeout=30, interval=2)
    assert lives(core) == alive, "a pod restarted"
    assert_replication_verifies_tls(api, core, 4)
    report.fault("TLS Secret changed without a playbook (cert-manager)", 0, {}, seconds,
                 "every server presents the new certificate %.0f s later, no pod restarted" % seconds)


def test_renewing_the_certificate_loads_it_without_a_restart_or_losing_a_write(api, core, runner, report):
    before = secret(core, "mysql-tls")
    pods = ["mysql-%d" % i for i in range(4)]
    served, alive, primary = {pod: served_not_before(api, pod) for pod in pods}, lives(core), recorded_primary(core, NS)
    with Writer(runner, "tls-renew") as writer:
        started = time.monotonic()
        play("renew_tls.yml").check()
        seconds = time.monotonic() - started
    after = secret(core, "mysql-tls")
    assert after["tls.crt"] != before["tls.crt"] and after["ca.crt"] == before["ca.crt"]
    renewed = {pod: served_not_before(api, pod) for pod in pods}
    assert all(served.values()) and all(renewed[pod] != served[pod] for pod in pods), (served, renewed)
    # The clone port too: its listener read the certificate as it started.
    serial = x509.load_pem_x509_certificate(after["tls.crt"].encode()).serial_number
    wait_until("every clone port presents the new certificate",
               lambda: all(clone_port_serial(api, pod) == serial for pod in pods), timeout=30, interval=2)
    assert lives(core) == alive and recorded_primary(core, NS) == primary, "a pod restarted, or the primary moved"
    assert_replication_verifies_tls(api, core, 4)
    # verify.yml reports what each server presents: the renewed certificate, valid mariadb_tls_days (825).
    report_lines = play("verify.yml").check().output
    for pod in pods:
        days = re.search(r"%s: .*, certificate valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC \((\d+) days\)" % pod, report_lines)
        assert days and 823 <= int(days.group(1)) <= 825, report_lines[-3000:]
    check_nothing_lost(report, runner, core, BASE, "renew_tls.yml (new certificate loaded without a restart)", writer, 4,
                       seconds, "every pod serves the new certificate, none restarted; replicas verify it")


def test_tls_is_refused_to_change_on_a_running_cluster(api, core, runner, report):
    generation = client.AppsV1Api(api).read_namespaced_stateful_set("mysql", NS).metadata.generation
    result = play("deploy.yml", mariadb_tls=False)
    assert result.rc != 0 and "mariadb_tls is false, but this cluster was created with TLS on" in result.output
    unchanged = client.AppsV1Api(api).read_namespaced_stateful_set("mysql", NS).metadata.generation == generation
    report.bad_input("deploy.yml -e {'mariadb_tls': False} (TLS cluster)", "mariadb_tls is false, but this cluster was "
                     "created with TLS on", unchanged)
    assert unchanged


def test_tls_on_11_8_after_the_upgrade(api, core, runner):
    play("upgrade.yml", version="11.8").check()
    assert all("11.8" in local_sql(api, pod, "SELECT @@version") for pod in ["mysql-%d" % i for i in range(4)])
    assert_replication_verifies_tls(api, core, 4)
    assert sql(runner, "mysql-primary", "SHOW STATUS LIKE 'Ssl_version'").split()[-1].startswith("TLSv1.")
