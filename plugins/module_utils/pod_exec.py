"""Run a command in a pod's container through the exec API."""

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import ExecTimeout


class ExecError(Exception):
    """The command could not be run, or it failed."""


class PodExec:
    """Runs commands in one container of the pods of a namespace, through
    `api` (kube_api.KubeApi or kube_client_api.ClientApi). Output is
    collected until the command exits; `timeout` bounds the wait."""

    def __init__(self, api, namespace, container):
        self._api, self._namespace, self._container = api, namespace, container

    def run(self, pod, command, timeout=30):
        try:
            code, stdout, stderr = self._api.exec(self._namespace, pod, self._container, command, timeout=timeout)
        except ExecTimeout as exc:
            raise ExecError(str(exc))
        except Exception as exc:  # the clients raise many types: report them all alike
            raise ExecError("exec failed: %s" % exc)
        if code != 0:
            raise ExecError("exit code %s: %s" % (code, stderr.strip() or stdout.strip()))
        return stdout
