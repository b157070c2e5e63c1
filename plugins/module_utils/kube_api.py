"""The Kubernetes API on Python's standard library alone: JSON requests and
exec over a websocket (the v4.channel.k8s.io protocol). The autopilot runs
on it, in the pod's service account, so that its image needs python3 and
nothing else (a stock python image). The modules reach the API through
kubernetes.core's client instead (kube_client_api), with the same two
methods, so cluster.py and lease.py serve both.
"""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import struct
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# RFC 6455: the server proves it read the key by hashing it with this.
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHANNELS = "v4.channel.k8s.io"
STDOUT, STDERR, ERROR = 1, 2, 3
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """The API server refused a request: status is its HTTP status."""

    def __init__(self, status, message):
        super().__init__("%s %s" % (status, message))
        self.status = status


class ExecTimeout(Exception):
    """The command ran past its timeout; the stream was closed."""


def exec_path(namespace, pod, container, command):
    query = [("container", container), ("stdout", "true"), ("stderr", "true")] + [("command", c) for c in command]
    return "/api/v1/namespaces/%s/pods/%s/exec?%s" % (quote(namespace), quote(pod), urlencode(query))


def exit_code(status):
    """The exit code in the error channel's Status: 0 on Success; the
    ExitCode cause otherwise; None when the command could not run."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message"))
    return None


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()


def client_frame(opcode, payload=b""):
    """One final, masked frame (a client must mask what it sends)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(read):
    """(final, opcode, payload) of the next frame, read(n) giving exactly n bytes."""
    first, second = read(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", read(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", read(8))[0]
    mask = read(4) if second & 0x80 else None
    payload = read(size) if size else b""
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(first & 0x80), first & 0x0F, payload


class ExecStream:
    """A command's output, channel by channel, until the server closes."""

    def __init__(self, response, sock, deadline):
        self._file, self._sock, self._deadline = response, sock, deadline

    def _read(self, count):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self._sock.settimeout(left)
        data = self._file.read(count)
        if len(data) < count:
            raise ConnectionError("the API server closed the exec stream")
        return data

    def messages(self):
        """Yields (channel, data) until the close frame; answers pings."""
        message, opcode = b"", None
        while True:
            final, op, payload = read_frame(self._read)
            if op == OP_PING:
                self._sock.sendall(client_frame(OP_PONG, payload))
                continue
            if op == OP_CLOSE:
                return
            if op != OP_CONTINUATION:
                message, opcode = payload, op
            else:
                message += payload
            if final and opcode in (OP_TEXT, OP_BINARY) and message:
                yield message[0], message[1:]

    def close(self):
        try:
            self._sock.sendall(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
        except OSError:
            pass
        self._sock.close()


class KubeApi:
    """The API server at `server` (https://host:port), trusted through
    `context`, authenticated by the bearer token `token()` returns."""

    def __init__(self, server, context, token, timeout=30):
        parts = urlsplit(server)
        self._host, self._port, self._secure = parts.hostname, parts.port, parts.scheme == "https"
        self._context, self._token, self.timeout = context, token, timeout
        self._lock = threading.Lock()
        self.requests = 0  # made so far, exec streams included: the autopilot's cost

    @classmethod
    def in_cluster(cls, environ, account=SERVICE_ACCOUNT):
        """The pod's service account. The token is read at each request: the
        kubelet rotates it."""
        context = ssl.create_default_context(cafile=os.path.join(account, "ca.crt"))
        # Python 3.13 makes the X.509 checks strict by default: some clusters'
        # CAs (no key identifiers, no keyUsage) would fail them, as they pass
        # client-go's. The chain and the host name are verified all the same.
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
        host = environ["KUBERNETES_SERVICE_HOST"]
        host = "[%s]" % host if ":" in host else host

        def token():
            with open(os.path.join(account, "token")) as handle:
                return handle.read().strip()

        return cls("https://%s:%s" % (host, environ["KUBERNETES_SERVICE_PORT"]), context, token)

    def _connection(self, timeout):
        with self._lock:
            self.requests += 1
        if self._secure:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, extra):
        headers = {"Authorization": "Bearer " + self._token()}
        headers.update(extra)
        return headers

    def request(self, method, path, body=None, content_type="application/json"):
        """The JSON the API server answers; ApiError on a status of 400 or more."""
        connection = self._connection(self.timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=payload, headers=self._headers(
                dict({"Accept": "application/json"}, **({"Content-Type": content_type} if payload is not None else {}))))
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise ApiError(response.status, status_message(data))
        return json.loads(data) if data else {}

    def exec(self, namespace, pod, container, command, timeout=30):
        """(exit code, stdout, stderr) of `command` in the container; the exit
        code is None when it could not run. ExecTimeout past `timeout`."""
        deadline = time.monotonic() + timeout
        key = base64.b64encode(os.urandom(16)).decode()
        connection = self._connection(timeout)
        try:
            connection.request("GET", exec_path(namespace, pod, container, command), headers=self._headers({
                "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": key, "Sec-WebSocket-Protocol": CHANNELS}))
            response = connection.getresponse()
            if response.status != 101:
                raise ApiError(response.status, status_message(response.read()))
            if response.getheader("Sec-WebSocket-Accept") != accept_key(key):
                raise ApiError(response.status, "the exec stream's handshake does not match its key")
        except BaseException:
            connection.close()
            raise
        stream = ExecStream(response.fp, connection.sock, deadline)
        output, status = {STDOUT: b"", STDERR: b""}, None
        try:
            for channel, data in stream.messages():
                if channel == ERROR:
                    status = json.loads(data)
                elif channel in output:
                    output[channel] += data
        except socket.timeout:
            raise ExecTimeout("timed out after %ss" % timeout)
        finally:
            stream.close()
            connection.close()
        stdout, stderr = (output[c].decode(errors="replace") for c in (STDOUT, STDERR))
        if status is None:
            raise ConnectionError("the exec stream ended without the command's status")
        code = exit_code(status)
        if code is None:
            return None, stdout, stderr + (status.get("message") or json.dumps(status))
        return code, stdout, stderr


def status_message(data):
    """The message of the API server's Status, or its body as it came."""
    try:
        status = json.loads(data)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("message"):
        return status["message"]
    return data.decode(errors="replace")
