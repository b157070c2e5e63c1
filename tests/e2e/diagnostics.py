"""What the cluster looked like when an e2e test failed: every namespace's
database and autopilot pods, what the autopilot decided last, and what each
server container logged about its role. Taken at the failure, since the
next test changes it, and kept short: CI shows the end of its output."""
from kubernetes import client

from tests.harness import AUTOPILOT

# Every cluster's database pods, whatever its name (harness.PODS selects the cluster mysql only).
DATABASE = "app.kubernetes.io/name=mariadb"
# What a server container logs about its role (role.sh, self-fence.sh, server.sh).
ROLE_EVENTS = ("fenc", "crash", "promoted", "writable", "replicating from", "guarding", "stood still", "ERROR")


def _pod_line(pod):
    statuses = pod.status.container_statuses or []
    ready = sum(1 for s in statuses if s.ready)
    restarts = sum(s.restart_count for s in statuses)
    waiting = [s.state.waiting.reason for s in statuses if s.state and s.state.waiting and s.state.waiting.reason]
    return "  %s %s ready %d/%d restarts %d%s%s" % (
        pod.metadata.name, pod.status.phase, ready, len(statuses), restarts,
        " deleting" if pod.metadata.deletion_timestamp else "", " (%s)" % ", ".join(waiting) if waiting else "")


def _log_tail(core, pod, container, keep, lines):
    try:
        text = core.read_namespaced_pod_log(pod.metadata.name, pod.metadata.namespace, container=container,
                                            tail_lines=2000 if keep else lines)
    except client.ApiException as exc:
        return ["    (no log: %s)" % exc.reason]
    found = [line for line in text.splitlines() if not keep or any(word in line for word in keep)]
    return ["    " + line[:240] for line in found[-lines:]]


def describe(core):
    """Lines describing every namespace that runs a cluster of ours."""
    out = []
    servers = core.list_pod_for_all_namespaces(label_selector=DATABASE).items
    autopilots = core.list_pod_for_all_namespaces(label_selector=AUTOPILOT).items
    for namespace in sorted({pod.metadata.namespace for pod in servers + autopilots}):
        def mine(pods):
            return sorted((p for p in pods if p.metadata.namespace == namespace), key=lambda p: p.metadata.name)
        out.append("namespace %s:" % namespace)
        out += [_pod_line(pod) for pod in mine(servers) + mine(autopilots)]
        for pod in mine(servers):
            events = _log_tail(core, pod, "mariadb", ROLE_EVENTS, 3) if pod.status.phase == "Running" else []
            if events:
                out.append("  %s, its role:" % pod.metadata.name)
                out += events
        for pod in mine(autopilots):
            out.append("  %s, last verdicts:" % pod.metadata.name)
            out += _log_tail(core, pod, None, None, 4)
    return "\n".join(out)
