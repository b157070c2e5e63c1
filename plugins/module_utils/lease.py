"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's
leaderelection does it: a copy holds the Lease while it renews it within
its duration; another takes it only once it expired. Every write carries
the resourceVersion read, so of two copies racing for it, the API server
lets one through (409 Conflict for the other).
"""

from datetime import datetime, timedelta, timezone

try:
    from kubernetes.client import CoordinationV1Api, V1Lease, V1LeaseSpec, V1ObjectMeta
    from kubernetes.client.rest import ApiException
except ImportError:
    pass


def expired(spec, now):
    """Whether the holder of a Lease with this spec let it lapse by now."""
    if not spec.holder_identity or spec.renew_time is None:
        return True
    return spec.renew_time + timedelta(seconds=spec.lease_duration_seconds or 0) < now


class Lease:
    """The Lease `name` in `namespace`, held as `identity`."""

    def __init__(self, api_client, namespace, name, identity, duration=15):
        self._api = CoordinationV1Api(api_client)
        self.namespace, self.name, self.identity, self.duration = namespace, name, identity, duration

    def hold(self, now=None):
        """Take or renew the Lease; True while this copy holds it."""
        now = now or datetime.now(timezone.utc)
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._write(self._api.create_namespaced_lease, V1Lease(
                metadata=V1ObjectMeta(name=self.name), spec=self._spec(V1LeaseSpec(lease_transitions=0), now, True)))
        mine = lease.spec.holder_identity == self.identity
        if not mine and not expired(lease.spec, now):
            return False
        lease.spec = self._spec(lease.spec, now, not mine)
        return self._write(lambda namespace, body: self._api.replace_namespaced_lease(self.name, namespace, body), lease)

    def _spec(self, spec, now, taken):
        spec.holder_identity, spec.renew_time, spec.lease_duration_seconds = self.identity, now, self.duration
        if taken:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        return spec

    def _write(self, write, body):
        try:
            write(self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # another copy wrote first
                return False
            raise
        return True
