"""Run a command in a pod's container through the Kubernetes exec API."""

import threading

try:
    from kubernetes.client import CoreV1Api
    from kubernetes.stream import stream
except ImportError:
    # Reported by AnsibleK8SModule when the module starts.
    pass


# kubernetes.stream.stream() swaps the shared ApiClient's request method for
# a websocket one while it opens the connection, and restores it afterwards:
# two threads opening at once can make a plain HTTP request to the exec
# endpoint ("400 Upgrade request required"). Opening is serialised; the
# commands still run concurrently.
_OPENING = threading.Lock()


class ExecError(Exception):
    """The command could not be run, or it failed."""


class PodExec:
    """Runs commands in containers of one namespace.

    Output is collected until the command exits; `timeout` bounds the wait.
    """

    def __init__(self, api_client, namespace, container):
        self._api = CoreV1Api(api_client)
        self._namespace = namespace
        self._container = container

    def run(self, pod, command, timeout=30):
        try:
            with _OPENING:
                resp = stream(
                    self._api.connect_get_namespaced_pod_exec,
                    pod,
                    self._namespace,
                    container=self._container,
                    command=command,
                    stdin=False,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    _preload_content=False,
                )
            resp.run_forever(timeout=timeout)
            # Still running: closed before anything is read, since reading an
            # open stream waits for the command's next output (a frozen
            # server's client prints nothing: measured 16 s more, unbounded).
            if resp.is_open():
                resp.close()
                raise ExecError("timed out after %ss" % timeout)
            stdout = resp.read_stdout() or ""
            stderr = resp.read_stderr() or ""
            rc = resp.returncode
        except ExecError:
            raise
        except Exception as exc:  # the client raises many types: report them all alike
            raise ExecError("exec failed: %s" % exc)
        if rc != 0:
            raise ExecError("exit code %s: %s" % (rc, stderr.strip() or stdout.strip()))
        return stdout
