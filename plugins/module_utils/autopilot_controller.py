"""The autopilot's loop, in the cluster: every round the copy that holds the
Lease reads the record and every pod's state over SQL (never Pod
readiness), asks autopilot.decide, and on a failover verdict runs
primary_move's failover, the one failover.yml runs, with the quorum that
agreed. The record's epoch compare-and-swap makes two copies that both
believe they lead harmless: one move is recorded, the other's promoted pod
follows it.
"""

import sys
import threading
import time

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import autopilot
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.primary_move import Move


class Ended(Exception):
    """A move's end, as AnsibleModule's exit_json or fail_json would report it."""

    def __init__(self, ok, msg, result):
        super().__init__(msg)
        self.ok, self.result = ok, result


class Driver:
    """What primary_move.Move needs of an AnsibleModule: the options, check
    mode, and the two ways a move ends."""

    check_mode = False

    def __init__(self, params):
        self.params = params

    def exit_json(self, **result):
        raise Ended(True, "", result)

    def fail_json(self, msg, **result):
        raise Ended(False, msg, result)


class Controller:
    """leading(): whether this copy holds the Lease now (renewed apart from
    the rounds, so a slow round or a long move never lets it lapse)."""

    def __init__(self, cluster, leading, failover_after=10, move_timeout=60, probe_timeout=5, move=Move):
        self.cluster, self.leading, self.move = cluster, leading, move
        self.failover_after, self.move_timeout, self.probe_timeout = failover_after, move_timeout, probe_timeout
        self.unreachable_since = None

    def round(self, now=None):
        """One round; the verdict, or None on a copy that does not lead."""
        now = time.monotonic() if now is None else now
        if not self.leading():
            self.unreachable_since = None  # the leader's count, not ours
            return None
        primary, _epoch = self.cluster.read_record()
        pods = self.cluster.pods(self.cluster.replicas())
        states = {pod: state for pod, state, error in self.cluster.read_states(pods, timeout=self.probe_timeout)
                  if not error}
        host = self.cluster.host(primary)
        if not autopilot.unreachable(primary, pods, states, host):
            self.unreachable_since = None
        elif self.unreachable_since is None:
            self.unreachable_since = now
        unreachable_for = 0 if self.unreachable_since is None else now - self.unreachable_since
        verdict = autopilot.decide(primary, pods, states, unreachable_for, self.failover_after, host)
        for pod in verdict.get("fence", []):
            try:
                self.cluster.role(pod, "isolate", timeout=15)
                verdict["reason"] += "; fenced %s, writable though not the recorded primary" % pod
            except ExecError as exc:
                verdict["reason"] += "; could not fence %s (%s)" % (pod, exc)
        if verdict["state"] == autopilot.FAILOVER:
            verdict["move"] = self.fail_over(verdict["agreeing"])
            self.unreachable_since = None
        return verdict

    def fail_over(self, quorum):
        params = {"force": False, "timeout": self.move_timeout, "max_lag": None, "quorum": quorum}
        try:
            self.move(Driver(params), self.cluster).failover(None)
        except Ended as ended:
            return dict(ended.result, ok=ended.ok, msg=str(ended))
        return {"ok": False, "msg": "the failover returned without a result"}


def renewing(lease, interval):
    """Renew the Lease every interval seconds in a thread of its own; the
    returned function tells whether this copy held it at the last renewal
    and that renewal is recent (a stuck thread does not lead)."""
    state = {"held": False, "at": 0.0}

    def renew():
        while True:
            try:
                held = lease.hold()
            except Exception:  # the API unreachable: not leading until it answers
                held = False
            state.update(held=held, at=time.monotonic())
            time.sleep(interval)

    threading.Thread(target=renew, daemon=True, name="lease").start()
    return lambda: state["held"] and time.monotonic() - state["at"] < lease.duration / 2.0


def main(environ, log=sys.stdout):
    """In the autopilot's pod: NAMESPACE, STATEFULSET_NAME, POD_NAME (the
    Lease holder's identity), FAILOVER_AFTER and INTERVAL (seconds)."""
    from kubernetes import client, config

    from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import Cluster
    from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.lease import Lease

    config.load_incluster_config()
    api = client.ApiClient()
    namespace, name = environ["NAMESPACE"], environ["STATEFULSET_NAME"]
    interval, said = float(environ.get("INTERVAL", 2)), None
    leading = renewing(Lease(client.ApiClient(), namespace, name + "-autopilot", environ["POD_NAME"]), interval)
    controller = Controller(Cluster(api, namespace, name), leading, failover_after=float(environ.get("FAILOVER_AFTER", 10)))
    while True:
        started = time.monotonic()
        try:
            verdict = controller.round(started)
        except Exception as exc:  # the API or a pod failing this round: the next one tries again
            verdict = {"state": "error", "reason": "%s: %s" % (type(exc).__name__, exc)}
        line = "follower: another copy holds the Lease" if verdict is None else "%s: %s" % (verdict["state"], verdict["reason"])
        if verdict and "move" in verdict:
            line += "; failover %s" % verdict["move"]
        if line != said:
            log.write(line + "\n")
            log.flush()
            said = line
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
