"""The modules' exec, on the kubernetes client: streams are opened one at a
time (kubernetes.stream.stream() swaps the shared ApiClient's request
method while it connects, so concurrent openings would send plain HTTP to
the exec endpoint), and a command past its timeout is closed unread."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import kube_client_api, pod_exec


class FinishedStream:
    returncode = 0

    def run_forever(self, timeout):
        """Replaced by the test, which counts the commands running at once."""

    def read_stdout(self):
        return "ok"

    def read_stderr(self):
        return ""

    def read_channel(self, channel):
        return '{"metadata":{},"status":"Success"}'

    def is_open(self):
        return False


def test_streams_are_opened_one_at_a_time_and_run_concurrently(monkeypatch):
    opening, running, peaks = [0], [0], {"opening": 0, "running": 0}
    guard = threading.Lock()

    def fake_stream(api_method, pod, namespace, **kwargs):
        with guard:
            opening[0] += 1
            peaks["opening"] = max(peaks["opening"], opening[0])
        time.sleep(0.02)  # the window in which the client's request method is swapped
        with guard:
            opening[0] -= 1
        return FinishedStream()

    def run_forever(self, timeout):
        with guard:
            running[0] += 1
            peaks["running"] = max(peaks["running"], running[0])
        time.sleep(0.05)
        with guard:
            running[0] -= 1

    monkeypatch.setattr(kube_client_api, "stream", fake_stream, raising=False)
    monkeypatch.setattr(kube_client_api, "CoreV1Api", lambda client: type("Api", (), {"connect_get_namespaced_pod_exec": None})(),
                        raising=False)
    monkeypatch.setattr(FinishedStream, "run_forever", run_forever)
    runner = pod_exec.PodExec(kube_client_api.ClientApi(None), "ns", "mariadb")
    with ThreadPoolExecutor(max_workers=5) as pool:
        outputs = list(pool.map(lambda pod: runner.run(pod, ["true"]), ["mysql-%d" % i for i in range(5)]))
    assert outputs == ["ok"] * 5
    assert peaks["opening"] == 1
    assert peaks["running"] > 1


class HungStream:
    """A command that never ends nor prints: reading it blocks, as a real
    open stream's read does until output arrives."""

    def __init__(self):
        self.closed = False

    def run_forever(self, timeout):
        time.sleep(0.01)

    def is_open(self):
        return not self.closed

    def close(self):
        self.closed = True

    def read_stdout(self):
        assert self.closed, "read an open stream: blocks until the command prints"
        return ""

    read_stderr = read_stdout


def test_a_command_still_running_at_the_timeout_is_closed_unread(monkeypatch):
    hung = HungStream()
    monkeypatch.setattr(kube_client_api, "stream", lambda *args, **kwargs: hung, raising=False)
    monkeypatch.setattr(kube_client_api, "CoreV1Api", lambda client: type("Api", (), {"connect_get_namespaced_pod_exec": None})(),
                        raising=False)
    try:
        pod_exec.PodExec(kube_client_api.ClientApi(None), "ns", "mariadb").run("mysql-0", ["mariadb", "-e", "SELECT 1"], timeout=0.01)
    except pod_exec.ExecError as exc:
        assert "timed out after 0.01s" in str(exc)
    else:
        raise AssertionError("no timeout reported")
    assert hung.closed
