"""What a StatefulSet rollout still waits for, from the StatefulSet and its
pods as plain dicts (the API's JSON form, as kubernetes.core.k8s_info returns)."""
import re

# How probe.sh (roles/configmap/files/scripts) says why a replica is not
# Ready: "replication IO thread: No (error 1236: Got fatal error ...)".
PROBE_REPLICATION_ERROR = re.compile(r"replication (IO|SQL) thread: (\w+) \(error (\d+): (.*)\)", re.S)
# The IO thread's error when the primary's binary logs no longer hold the
# replica's position: no wait ends it, only a new copy of the data.
POSITION_GONE = 1236


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


def replication_stuck(probe_message):
    """The replication error named by a readiness probe's message that no
    waiting ends (the IO thread's position gone from the primary, or the SQL
    thread stopped on an error), as one line; None for any other message."""
    found = PROBE_REPLICATION_ERROR.search(probe_message or "")
    if not found:
        return None
    thread, state, errno, error = found.groups()
    if (thread == "IO" and int(errno) == POSITION_GONE) or (thread == "SQL" and int(errno) != 0):
        return "replication %s thread %s with error %s: %s" % (thread, state, errno, " ".join(error.split()))
    return None


def stuck(pods, events):
    """Map pod name -> why it cannot become Ready by waiting, from the
    readiness probe failures (events of reason Unhealthy) of the pod as it
    runs now (its uid): the fix is a new copy of its data."""
    not_ready = {p["metadata"]["uid"]: p["metadata"]["name"] for p in pods if not _ready(p)}
    latest = {}
    for event in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
        pod = not_ready.get((event.get("involvedObject") or {}).get("uid"))
        if pod:
            latest[pod] = replication_stuck(event.get("message"))
    return {pod: reason for pod, reason in sorted(latest.items()) if reason}
