"""What a StatefulSet rollout still waits for, from the StatefulSet and its
pods as plain dicts (the API's JSON form, as kubernetes.core.k8s_info returns)."""


def _ready(pod):
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pending(pods, statefulset, replicas=None):
    """Return one 'pod: reason' string per pod the rollout still waits for.

    Every ordinal below replicas (default: the StatefulSet's) must be Ready, and those at or above the
    rolling update partition on the update revision. Unlike kubernetes.core's
    StatefulSet wait, this completes under a partition."""
    spec = statefulset["spec"]
    status = statefulset.get("status") or {}
    name = statefulset["metadata"]["name"]
    partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
    revision = status.get("updateRevision")
    if (status.get("observedGeneration") or 0) < statefulset["metadata"].get("generation", 0):
        return [f"{name}: controller has not seen the new spec yet"]
    by_name = {p["metadata"]["name"]: p for p in pods}
    waiting = []
    for ordinal in range(spec["replicas"] if replicas is None else replicas):
        pod_name = f"{name}-{ordinal}"
        pod = by_name.get(pod_name)
        if pod is None:
            waiting.append(f"{pod_name}: not created yet")
        elif ordinal >= partition and (pod["metadata"].get("labels") or {}).get("controller-revision-hash") != revision:
            waiting.append(f"{pod_name}: not on update revision {revision} yet")
        elif pod["metadata"].get("deletionTimestamp"):
            waiting.append(f"{pod_name}: terminating")
        elif not _ready(pod):
            waiting.append(f"{pod_name}: not Ready")
    return waiting


def outdated(pods, statefulset):
    """Names of the pods not on the update revision (below the partition), sorted."""
    revision = (statefulset.get("status") or {}).get("updateRevision")
    return sorted(p["metadata"]["name"] for p in pods
                  if (p["metadata"].get("labels") or {}).get("controller-revision-hash") != revision)


def images(pods, container):
    """Map pod name -> image of the given container, sorted by name."""
    found = {}
    for pod in pods:
        for spec in pod["spec"]["containers"]:
            if spec["name"] == container:
                found[pod["metadata"]["name"]] = spec["image"]
    return dict(sorted(found.items()))


def label_selector(statefulset):
    """The StatefulSet's pod selector as a label selector string (matchLabels only)."""
    labels = statefulset["spec"]["selector"].get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
