"""kube_api's two methods on the kubernetes client that kubernetes.core
configures from the module's connection options (kubeconfig, context,
proxy, token refresh), for this collection's modules."""

import json
import threading

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import ApiError, ExecTimeout, exit_code, status_message

try:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.rest import ApiException
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


class ClientApi:
    def __init__(self, api_client):
        self._client = api_client
        self._core = CoreV1Api(api_client)

    def request(self, method, path, body=None, content_type="application/json"):
        try:
            response = self._client.call_api(
                path, method, header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body, auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True)
        except ApiException as exc:
            raise ApiError(exc.status, status_message(exc.body) if exc.body else exc.reason)
        data = response.data
        return json.loads(data) if data else {}

    def exec(self, namespace, pod, container, command, timeout=30):
        with _OPENING:
            resp = stream(self._core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                          command=command, stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
        resp.run_forever(timeout=timeout)
        # Still running: closed before anything is read, since reading an
        # open stream waits for the command's next output (a frozen
        # server's client prints nothing: measured 16 s more, unbounded).
        if resp.is_open():
            resp.close()
            raise ExecTimeout("timed out after %ss" % timeout)
        stdout, stderr = resp.read_stdout() or "", resp.read_stderr() or ""
        status = resp.read_channel(3)
        code = exit_code(json.loads(status)) if status else None
        if code is None:
            return None, stdout, stderr + (status or "no status")
        return code, stdout, stderr
