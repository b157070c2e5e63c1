"""The cluster as this collection's modules see it: its pods, the record of
which pod is the primary, the write Service, and SQL run in the pods."""

import json
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import MERGE_PATCH, ApiError
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError, PodExec

# The pods' own client config: unix socket as the OS user mysql (see the
# pod scripts), so no password is ever passed.
CLIENT = ["mariadb", "--defaults-file=/etc/mysql/cluster/my.cnf", "--protocol=socket", "--user=mysql"]
ROLE_SCRIPT = ["bash", "/opt/mariadb-k8s/role.sh"]
PRIMARY_ANNOTATION = "mariadb-k8s/primary"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
# Where kubernetes.core's apply, like kubectl's, keeps what it last applied.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def last_applied_selecting(last_applied, pod):
    """The write Service's last applied configuration with its selector's pod
    name set to `pod`, so that the next deploy.yml, rendering the moved
    primary, finds nothing to change; None when there is none."""
    if not last_applied:
        return None
    config = json.loads(last_applied)
    config.setdefault("spec", {}).setdefault("selector", {})[POD_NAME_LABEL] = pod
    return json.dumps(config, separators=(",", ":"))


def record_name(name):
    """The ConfigMap recording the primary (roles/statefulset/templates/topology.yml.j2)."""
    return name + "-topology"


class RecordMoved(Exception):
    """The record no longer names the primary and epoch a move started from:
    another move recorded `primary` meanwhile."""

    def __init__(self, message, primary):
        super().__init__(message)
        self.primary = primary


class Cluster:
    """One MariaDB StatefulSet: `name` in `namespace`, reached through `api`
    (kube_api.KubeApi in the autopilot, kube_client_api.ClientApi in the modules)."""

    def __init__(self, api, namespace, name, container="mariadb"):
        self.namespace, self.name, self._api = namespace, name, api
        self.exec = PodExec(api, namespace, container)
        self._sidecar = PodExec(api, namespace, "sidecar")

    def _path(self, kind, name, group="api/v1"):
        return "/%s/namespaces/%s/%s/%s" % (group, self.namespace, kind, name)

    def _patch(self, kind, name, body):
        return self._api.request("PATCH", self._path(kind, name), body, content_type=MERGE_PATCH)

    def replicas(self):
        return self._api.request("GET", self._path("statefulsets", self.name, "apis/apps/v1"))["spec"]["replicas"]

    def pods(self, count):
        return ["%s-%d" % (self.name, i) for i in range(count)]

    def host(self, pod):
        return "%s.%s" % (pod, self.name)

    def ordinal(self, pod):
        return int(pod.rsplit("-", 1)[1])

    def read_record(self):
        """(primary, epoch) of the record: ordinal 0 and epoch 0 for a cluster
        deployed before the record held them. Every move increments the epoch."""
        return self._record()[0]

    def recorded_primary(self):
        return self.read_record()[0]

    def _record(self):
        try:
            record = self._api.request("GET", self._path("configmaps", record_name(self.name)))
        except ApiError as exc:
            if exc.status != 404:
                raise
            return ("%s-0" % self.name, 0), None
        data = record.get("data") or {}
        return (data.get("primary") or "%s-0" % self.name, int(data.get("epoch") or 0)), record["metadata"]["resourceVersion"]

    def _swap(self, expected, new):
        """Compare-and-swap of the record's (primary, epoch): written only while
        the record holds `expected`, by the API server's check of the resource
        version read (another key changing meanwhile, e.g. the settings, is
        read again; another move is RecordMoved)."""
        for _attempt in range(5):
            found, version = self._record()
            if found != expected:
                raise RecordMoved("the record names %s at epoch %d, not %s at epoch %d: another move ran meanwhile"
                                  % (found + expected), found[0])
            try:
                self._patch("configmaps", record_name(self.name), {
                    "metadata": {"resourceVersion": version}, "data": {"primary": new[0], "epoch": str(new[1])}})
                return
            except ApiError as exc:
                if exc.status != 409:
                    raise
        raise RecordMoved("the record kept changing while %s was being recorded" % new[0], expected[0])

    def record_primary(self, pod, previous, epoch):
        """Record `pod` as the primary at epoch + 1, if the record still names
        `previous` at `epoch`, and point the write Service at it; when the
        Service cannot be moved, the record names `previous` again (epoch + 2).
        Returns the epoch recorded."""
        self._swap((previous, epoch), (pod, epoch + 1))
        try:
            self.point_write_service(pod)
        except Exception:
            self._swap((pod, epoch + 1), (previous, epoch + 2))
            raise
        return epoch + 1

    def point_write_service(self, pod):
        """The write Service selects `pod`; None: no pod (no label value is empty).
        Only the pod name changes: the patch merges into the selector, which
        keeps the labels the services role gave it."""
        name = self.name + "-primary"
        patch = {"spec": {"selector": {POD_NAME_LABEL: pod or ""}}}
        service = self._api.request("GET", self._path("services", name))
        annotations = service["metadata"].get("annotations") or {}
        last_applied = last_applied_selecting(annotations.get(LAST_APPLIED), pod or "")
        if last_applied:
            patch["metadata"] = {"annotations": {LAST_APPLIED: last_applied}}
        self._patch("services", name, patch)

    def announce_primary(self, pods, primary):
        """Annotate each pod: updating a pod makes the kubelet refresh its
        mounted record now rather than at its next periodic sync. Returns the
        pods that could not be annotated (gone)."""
        missed = []
        for pod in pods:
            try:
                self._patch("pods", pod, {"metadata": {"annotations": {PRIMARY_ANNOTATION: primary}}})
            except ApiError:
                missed.append(pod)
        return missed

    def pod_ready(self, pod):
        """True or False; None when the pod does not exist."""
        try:
            status = self._api.request("GET", self._path("pods", pod)).get("status") or {}
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])

    def terminating(self, pods):
        """The pods among `pods` being deleted (a deletion timestamp set)."""
        listed = self._api.request("GET", "/api/v1/namespaces/%s/pods" % self.namespace)["items"]
        return {pod["metadata"]["name"] for pod in listed
                if pod["metadata"]["name"] in pods and pod["metadata"].get("deletionTimestamp")}

    def reclone(self, pod):
        """Delete a replica's data volume, then its pod: the StatefulSet
        creates both again, the empty volume is filled by a clone."""
        self._api.request("DELETE", self._path("persistentvolumeclaims", "data-" + pod))
        self.delete_pod(pod)

    def delete_pod(self, pod):
        self._api.request("DELETE", self._path("pods", pod))

    def sql(self, pod, query, timeout=30):
        return self.exec.run(pod, CLIENT + ["--batch", "--skip-column-names", "-e", query], timeout=timeout)

    def has_role_script(self, pod):
        try:
            self.exec.run(pod, ["test", "-e", ROLE_SCRIPT[-1]], timeout=10)
            return True
        except ExecError:
            return False

    def role(self, pod, *args, timeout=30, container=None):
        """Run role.sh in the pod (fence, unfence, promote, replicate N), in
        the server's container unless container is "sidecar"."""
        run = self._sidecar.run if container == "sidecar" else self.exec.run
        return run(pod, ROLE_SCRIPT + [str(a) for a in args], timeout=timeout)

    def certificate_expiry(self, pod, timeout=30):
        """When the certificate the pod's server presents expires (None: none)."""
        return replication.certificate_expiry(self.exec.run(
            pod, CLIENT + ["--ssl", "--skip-ssl-verify-server-cert", "--batch", "--skip-column-names",
                           "-e", replication.SERVED_CERTIFICATE_SQL], timeout=timeout))

    def read_states(self, pods, timeout=30, timeouts=None):
        """[(pod, state or None, error or None)] read in parallel; timeouts:
        {pod: seconds} for pods that get less than timeout."""
        if not pods:
            return []

        def read(pod):
            try:
                output = self.exec.run(pod, CLIENT + ["-e", replication.STATUS_SQL], timeout=(timeouts or {}).get(pod, timeout))
                return pod, replication.pod_state(output), None
            except (ExecError, ValueError) as exc:
                return pod, None, "%s: cannot read its state (%s)" % (pod, exc)

        with ThreadPoolExecutor(max_workers=min(8, len(pods))) as pool:
            return list(pool.map(read, pods))
