"""How a Job ended, from the Job and its pods as plain dicts (the API's JSON
form, as kubernetes.core.k8s_info returns)."""


def outcome(job):
    """True once the Job succeeded, False once it failed, None while it runs."""
    status = (job or {}).get("status") or {}
    if status.get("succeeded"):
        return True
    if status.get("failed"):
        return False
    return None


def newest_pod(pods):
    """The name of the pod created last (a Job that retried has several), or None."""
    if not pods:
        return None
    return max(pods, key=lambda pod: (pod["metadata"].get("creationTimestamp") or "", pod["metadata"]["name"]))["metadata"]["name"]


def started_containers(pod):
    """The names of POD's containers, init containers too, that have started
    (running or terminated): those with a log."""
    status = pod.get("status") or {}
    every = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    return [c["name"] for c in every if set((c.get("state") or {}).keys()) & {"running", "terminated"}]
