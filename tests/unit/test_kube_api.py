"""The standard-library API client the autopilot runs on, against a local
HTTP server speaking the API server's side: JSON requests and errors, and
exec's websocket (handshake, the channels, long and fragmented frames,
pings, exit codes, a command past its timeout)."""
import json
import socketserver
import struct
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import kube_api
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError, PodExec


def server_frame(opcode, payload, final=True):
    size = len(payload)
    head = bytes([(0x80 if final else 0) | opcode])
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def status(code):
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        request = self.rfile.readline().decode().split()
        headers = {}
        for line in iter(self.rfile.readline, b"\r\n"):
            name, value = line.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        self.server.seen.append((request[0], request[1], headers))
        if headers.get("authorization") != "Bearer token-1":
            return self.answer(401, {"kind": "Status", "message": "Unauthorized"})
        path = urlsplit(request[1])
        if path.path.endswith("/exec"):
            return self.exec(parse_qs(path.query)["command"], headers)
        if request[0] == "GET" and path.path == "/api/v1/namespaces/db/configmaps/found":
            return self.answer(200, {"data": {"primary": "mysql-1"}})
        if request[0] == "PATCH":
            body = json.loads(self.rfile.read(int(headers["content-length"])))
            return self.answer(200, {"patched": body, "type": headers["content-type"]})
        self.answer(404, {"kind": "Status", "message": 'configmaps "missing" not found'})

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.wfile.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (code, len(data), data))

    def exec(self, command, headers):
        if "accept" in headers:  # the API server refuses an upgrade that asks for JSON
            return self.answer(406, {"kind": "Status", "message": "406: Not Acceptable"})
        if command[0] == "missing-container":
            return self.answer(400, {"kind": "Status", "message": "container sidecar is not valid for pod mysql-0"})
        accept = kube_api.accept_key(headers["sec-websocket-key"])
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n" % accept).encode())
        if command[0] == "hang":
            self.server.hung_closed.wait(5)
            return
        if command[0] == "ping":
            self.wfile.write(server_frame(kube_api.OP_PING, b"are you there"))
            self.server.client_frames.append(kube_api.read_frame(self.rfile.read))
        if command[0] == "long":
            self.wfile.write(server_frame(kube_api.OP_BINARY, b"\x01" + b"x" * 300))
            self.wfile.write(server_frame(kube_api.OP_BINARY, b"\x01" + b"y" * 70000))
        if command[0] == "fragmented":
            self.wfile.write(server_frame(kube_api.OP_BINARY, b"\x01frag", final=False))
            self.wfile.write(server_frame(kube_api.OP_CONTINUATION, b"mented"))
        self.wfile.write(server_frame(kube_api.OP_BINARY, b"\x01" + " ".join(command).encode()))
        self.wfile.write(server_frame(kube_api.OP_BINARY, b"\x02some warning"))
        code = int(command[1]) if command[0] == "exit" else 0
        self.wfile.write(server_frame(kube_api.OP_BINARY, b"\x03" + json.dumps(status(code)).encode()))
        self.wfile.write(server_frame(kube_api.OP_CLOSE, struct.pack("!H", 1000)))
        self.server.client_frames.append(kube_api.read_frame(self.rfile.read))


@pytest.fixture
def server():
    served = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    served.daemon_threads = True
    served.seen, served.client_frames, served.hung_closed = [], [], threading.Event()
    threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield served
    served.hung_closed.set()
    served.shutdown()
    served.server_close()


def api(server):
    return kube_api.KubeApi("http://127.0.0.1:%d" % server.server_address[1], None, lambda: "token-1", timeout=5)


def test_a_request_answers_the_json_and_counts(server):
    client = api(server)
    assert client.request("GET", "/api/v1/namespaces/db/configmaps/found") == {"data": {"primary": "mysql-1"}}
    assert client.requests == 1


def test_a_patch_is_sent_as_json_of_the_type_asked(server):
    answer = api(server).request("PATCH", "/api/v1/namespaces/db/pods/mysql-0", {"metadata": {"labels": {"a": "b"}}},
                                 content_type=kube_api.MERGE_PATCH)
    assert answer == {"patched": {"metadata": {"labels": {"a": "b"}}}, "type": kube_api.MERGE_PATCH}


def test_a_refusal_is_an_api_error_with_the_status_and_its_message(server):
    with pytest.raises(kube_api.ApiError) as refused:
        api(server).request("GET", "/api/v1/namespaces/db/configmaps/missing")
    assert refused.value.status == 404 and str(refused.value) == '404 configmaps "missing" not found'


def test_the_token_is_read_at_each_request(server):
    tokens = iter(["token-1", "token-2"])
    client = kube_api.KubeApi("http://127.0.0.1:%d" % server.server_address[1], None, lambda: next(tokens))
    client.request("GET", "/api/v1/namespaces/db/configmaps/found")
    with pytest.raises(kube_api.ApiError) as refused:
        client.request("GET", "/api/v1/namespaces/db/configmaps/found")
    assert refused.value.status == 401


def test_exec_collects_each_channel_and_the_exit_code(server):
    code, stdout, stderr = api(server).exec("db", "mysql-0", "mariadb", ["echo", "a b", "c&d"])
    assert (code, stdout, stderr) == (0, "echo a b c&d", "some warning")
    method, target, headers = server.seen[-1]
    assert method == "GET" and target.startswith("/api/v1/namespaces/db/pods/mysql-0/exec?container=mariadb&")
    assert parse_qs(urlsplit(target).query)["command"] == ["echo", "a b", "c&d"]
    assert headers["sec-websocket-protocol"] == "v4.channel.k8s.io"


def client_frames(server):
    """What the client sent, once the server's thread has read it."""
    for _ in range(100):
        if server.client_frames:
            break
        time.sleep(0.02)
    return server.client_frames


def test_the_client_closes_with_a_masked_close_frame(server):
    api(server).exec("db", "mysql-0", "mariadb", ["true"])
    assert client_frames(server) == [(True, kube_api.OP_CLOSE, struct.pack("!H", 1000))]


def test_long_and_fragmented_messages_are_read_whole(server):
    assert api(server).exec("db", "mysql-0", "mariadb", ["long"])[1] == "x" * 300 + "y" * 70000 + "long"
    assert api(server).exec("db", "mysql-0", "mariadb", ["fragmented"])[1] == "fragmentedfragmented"


def test_a_ping_is_answered(server):
    assert api(server).exec("db", "mysql-0", "mariadb", ["ping"])[0] == 0
    assert client_frames(server)[0] == (True, kube_api.OP_PONG, b"are you there")


def test_a_failed_command_fails_in_pod_exec_with_its_code_and_output(server):
    assert api(server).exec("db", "mysql-0", "mariadb", ["exit", "3"])[0] == 3
    with pytest.raises(ExecError, match="exit code 3: some warning"):
        PodExec(api(server), "db", "mariadb").run("mysql-0", ["exit", "3"])


def test_an_exec_the_api_server_refuses_names_why(server):
    with pytest.raises(ExecError, match="400 container sidecar is not valid for pod mysql-0"):
        PodExec(api(server), "db", "sidecar").run("mysql-0", ["missing-container"])


def test_a_command_past_its_timeout_is_abandoned(server):
    with pytest.raises(ExecError, match="timed out after 0.3s"):
        PodExec(api(server), "db", "mariadb").run("mysql-0", ["hang"], timeout=0.3)


def test_the_exit_code_is_read_from_the_status():
    assert kube_api.exit_code(status(0)) == 0 and kube_api.exit_code(status(137)) == 137
    assert kube_api.exit_code({"status": "Failure", "message": "command not found"}) is None


def test_in_cluster_reads_the_service_account(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("token-9\n")
    cafiles = []

    def strict_context(cafile):
        """What Python 3.13's create_default_context gives, the CA aside."""
        cafiles.append(cafile)
        context = kube_api.ssl.SSLContext(kube_api.ssl.PROTOCOL_TLS_CLIENT)
        context.verify_flags |= kube_api.ssl.VERIFY_X509_STRICT
        return context
    monkeypatch.setattr(kube_api.ssl, "create_default_context", strict_context)
    client = kube_api.KubeApi.in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
                                         account=str(tmp_path))
    assert (client._host, client._port, client._secure) == ("fd00::1", 443, True)
    assert cafiles == [str(tmp_path / "ca.crt")] and client._token() == "token-9"
    # The chain and the name are checked; the strict X.509 profile is not asked.
    assert client._context.verify_mode == kube_api.ssl.CERT_REQUIRED and client._context.check_hostname
    assert not client._context.verify_flags & kube_api.ssl.VERIFY_X509_STRICT


def test_an_error_body_that_is_no_status_is_given_as_it_came():
    assert kube_api.status_message(b'["not", "a status"]') == '["not", "a status"]'
    assert kube_api.status_message(b"<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert kube_api.status_message(b'{"kind": "Status", "message": "gone"}') == "gone"


def test_nothing_but_the_standard_library_is_imported():
    with open(kube_api.__file__) as handle:
        imports = [line.split()[1] for line in handle if line.startswith(("import ", "from "))]
    assert not [name for name in imports if name.split(".")[0] not in (
        "base64", "hashlib", "http", "json", "os", "socket", "ssl", "struct", "threading", "time", "urllib")]
