"""Filters over StatefulSet and Pod objects as returned by kubernetes.core.k8s_info."""

def _ready(pod):
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def statefulset_pending(pods, statefulset):
    """Return one 'pod: reason' string per pod the rollout still waits for."""
    spec = statefulset["spec"]
    status = statefulset.get("status", {})
    name = statefulset["metadata"]["name"]
    partition = (spec.get("updateStrategy", {}).get("rollingUpdate") or {}).get("partition", 0)
    revision = status.get("updateRevision")
    if status.get("observedGeneration", 0) < statefulset["metadata"].get("generation", 0):
        return [f"{name}: controller has not seen the new spec yet"]
    by_name = {p["metadata"]["name"]: p for p in pods}
    pending = []
    for ordinal in range(spec["replicas"]):
        pod_name = f"{name}-{ordinal}"
        pod = by_name.get(pod_name)
        if pod is None:
            pending.append(f"{pod_name}: not created yet")
        elif ordinal >= partition and pod["metadata"].get("labels", {}).get("controller-revision-hash") != revision:
            pending.append(f"{pod_name}: not on update revision {revision} yet")
        elif pod["metadata"].get("deletionTimestamp"):
            pending.append(f"{pod_name}: terminating")
        elif not _ready(pod):
            pending.append(f"{pod_name}: not Ready")
    return pending


def pod_images(pods, container="mariadb"):
    """Map pod name -> image of the given container, sorted by name."""
    images = {}
    for pod in pods:
        for spec in pod["spec"]["containers"]:
            if spec["name"] == container:
                images[pod["metadata"]["name"]] = spec["image"]
    return dict(sorted(images.items()))


class FilterModule:
    def filters(self):
        return {"statefulset_pending": statefulset_pending, "pod_images": pod_images}
