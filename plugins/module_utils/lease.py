"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's
leaderelection does it: a copy holds the Lease while it renews it within
its duration; another takes it only once it expired. Every write carries
the resourceVersion read, so of two copies racing for it, the API server
lets one through (409 Conflict for the other).
"""

from datetime import datetime, timedelta, timezone

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import ApiError

# A Lease's MicroTime, as the API server writes and expects it.
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def micro_time(moment):
    return moment.astimezone(timezone.utc).strftime(MICRO_TIME)


def parse_time(text):
    """A MicroTime or a Time (whole seconds) as an aware datetime."""
    form = MICRO_TIME if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, form).replace(tzinfo=timezone.utc)


def expired(spec, now):
    """Whether the holder of a Lease with this spec let it lapse by now."""
    if not spec.get("holderIdentity") or not spec.get("renewTime"):
        return True
    return parse_time(spec["renewTime"]) + timedelta(seconds=spec.get("leaseDurationSeconds") or 0) < now


class Lease:
    """The Lease `name` in `namespace`, held as `identity`, through `api`
    (kube_api.KubeApi)."""

    def __init__(self, api, namespace, name, identity, duration=15):
        self._api = api
        self.namespace, self.name, self.identity, self.duration = namespace, name, identity, duration
        self._leases = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % namespace

    def hold(self, now=None):
        """Take or renew the Lease; True while this copy holds it."""
        now = now or datetime.now(timezone.utc)
        try:
            lease = self._api.request("GET", "%s/%s" % (self._leases, self.name))
        except ApiError as exc:
            if exc.status != 404:
                raise
            return self._write("POST", self._leases, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name},
                "spec": self._spec({"leaseTransitions": 0}, now, True)})
        spec = lease.get("spec") or {}
        mine = spec.get("holderIdentity") == self.identity
        if not mine and not expired(spec, now):
            return False
        lease["spec"] = self._spec(spec, now, not mine)
        return self._write("PUT", "%s/%s" % (self._leases, self.name), lease)

    def release(self):
        """Give the Lease up if this copy holds it, so that another copy takes
        it at its next try rather than once it expired. True when released."""
        path = "%s/%s" % (self._leases, self.name)
        lease = self._api.request("GET", path)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return False
        spec["holderIdentity"] = None
        return self._write("PUT", path, lease)

    def _spec(self, spec, now, taken):
        spec.update(holderIdentity=self.identity, renewTime=micro_time(now), leaseDurationSeconds=self.duration)
        if taken:
            spec.update(acquireTime=micro_time(now), leaseTransitions=(spec.get("leaseTransitions") or 0) + 1)
        return spec

    def _write(self, method, path, body):
        try:
            self._api.request(method, path, body)
        except ApiError as exc:
            if exc.status == 409:  # another copy wrote first
                return False
            raise
        return True
