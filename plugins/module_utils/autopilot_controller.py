"""The autopilot's loop, in the cluster: every round the copy that holds the
Lease reads the record and every pod's state over SQL (never Pod
readiness), asks autopilot.decide, and on a failover verdict runs
primary_move's failover, the one failover.yml runs, with the quorum that
agreed. The record's epoch compare-and-swap makes two copies that both
believe they lead harmless: one move is recorded, the other's promoted pod
follows it.
"""

import os
import signal
import sys
import threading
import time
import traceback

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import autopilot
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import Cluster, RecordMoved
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import KubeApi
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.lease import Lease
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.primary_move import Move


# Seconds a re-cloned replica is left to clone before it may be re-cloned again.
RECLONE_EVERY = 600
# Seconds a read-only pod replicates from nobody before it is pointed at the primary.
REJOIN_AFTER = 60
# Seconds after which a round is slow: its place is logged, and its length.
SLOW_ROUND = 10
# Seconds between two renewals of the Lease (it lasts 15).
RENEW_EVERY = 2


class Ended(Exception):
    """A move's end, as AnsibleModule's exit_json or fail_json would report it."""

    def __init__(self, ok, msg, result):
        super().__init__(msg)
        self.ok, self.result = ok, result


class Driver:
    """What primary_move.Move needs of an AnsibleModule: the options, check
    mode, the two ways a move ends, and where its steps are told as they
    happen (the log: a move that hangs still shows how far it got)."""

    check_mode = False

    def __init__(self, params, tell=None):
        self.params = params
        self.tell = tell

    def exit_json(self, **result):
        raise Ended(True, "", result)

    def fail_json(self, msg, **result):
        raise Ended(False, msg, result)


class Controller:
    """leading(): whether this copy holds the Lease now (renewed apart from
    the rounds, so a slow round or a long move never lets it lapse)."""

    def __init__(self, cluster, leading, failover_after=5, move_timeout=60, probe_timeout=1, primary_timeout=0.5, max_lag=5,
                 move=Move, tell=None):
        self.cluster, self.leading, self.move, self.max_lag, self.tell = cluster, leading, move, max_lag, tell
        self.failover_after, self.move_timeout, self.probe_timeout = failover_after, move_timeout, probe_timeout
        # The primary's read, shorter: only its silence starts the count (an
        # exec answers in about 0.15 s here), and a slow answer that misses it
        # fails nothing over, since the failover also needs a quorum of
        # replicas that lost the primary.
        self.primary_timeout = primary_timeout
        self.unreachable_since = None
        self.read_took = 0.0  # how long the last round's reads took
        self.silent = False  # whether the primary was silent last round
        self.few_answered = False  # whether no majority of the pods answered last round
        self.recloned = {}
        self.idle_since = {}

    def round(self, now=None):
        """One round; the verdict, or None on a copy that does not lead."""
        now = time.monotonic() if now is None else now
        if not self.leading():
            self.unreachable_since = None  # the leader's count, not ours
            return None
        primary, epoch = self.cluster.read_record()
        pods = self.cluster.pods(self.cluster.replicas())
        reading = time.monotonic()
        read = self.cluster.read_states(pods, timeout=self.probe_timeout, timeouts={primary: self.primary_timeout})
        states = {pod: state for pod, state, error in read if not error}
        errors = {pod: error for pod, state, error in read if error}
        host = self.cluster.host(primary)
        unreachable, answers = autopilot.unreachable(primary, pods, states, host), primary in states
        # A primary that answers again after a silence (thawed) restarts the
        # count: its replicas lost it while it was silent, and reconnect now.
        # One that falls silent keeps the count. So do a majority of pods that
        # answer again after too few did: the primary thawed with them may
        # miss a read or two, and their votes must not date from before they
        # could see it.
        few_answered = len(states) < len(pods) // 2 + 1
        if not unreachable or (self.silent and answers) or (self.few_answered and not few_answered):
            self.unreachable_since = None
        self.silent, self.few_answered = not answers, few_answered
        # Counted to when the reads ended, and from when the first failing
        # ones ended, not when their round began: a fault during the reads
        # is never counted from before it happened (self-fence.sh's head
        # start relies on that), and a primary silent through this round's
        # reads is counted as such.
        self.read_took = time.monotonic() - reading
        read_until = now + self.read_took
        if unreachable and self.unreachable_since is None:
            self.unreachable_since = read_until
        unreachable_for = 0 if self.unreachable_since is None else read_until - self.unreachable_since
        verdict = autopilot.decide(primary, pods, states, unreachable_for, self.failover_after, host,
                                   self.cluster.terminating(pods))
        # Why the primary did not answer (a timeout, a refused connection, an
        # exec the API server refused): what a post-mortem needs.
        if primary in errors and verdict["state"] != autopilot.HEALTHY:
            verdict["reason"] += " [%s]" % errors[primary]
        for action in ("isolate", "fence"):
            for pod in verdict.get(action, []):
                try:
                    done = self.cluster.role(pod, action, timeout=15).strip().splitlines()
                    verdict["reason"] += ("; crashed %s: its commits no replica acknowledged roll back as it restarts "
                                          "read-only" % pod if done[-1:] == ["crashing"] else "; %sd %s" % (action, pod))
                except ExecError as exc:
                    verdict["reason"] += "; could not %s %s (%s)" % (action, pod, exc)
        if verdict["state"] == autopilot.RESUME:
            verdict["reason"] += "; " + self.resume(primary, epoch)
        for pod in verdict.get("reclone", []):
            verdict["reason"] += "; " + self.reclone(pod, now)
        # A pod that just started is idle until its sidecar sets up
        # replication (from its clone's position): only one idle for
        # REJOIN_AFTER seconds is pointed at the primary. An old primary a
        # move crashed or isolated (its fence mark) restarted its server
        # alone: no sidecar start is coming, it is pointed at once.
        self.idle_since = {pod: self.idle_since.get(pod, now - REJOIN_AFTER if states[pod].get("fenced") else now)
                           for pod in verdict.get("rejoin", [])}
        for pod in [pod for pod, since in self.idle_since.items() if now - since >= REJOIN_AFTER]:
            try:
                self.cluster.role(pod, "replicate", self.cluster.ordinal(primary), timeout=30)
                verdict["reason"] += "; %s replicates from %s again" % (pod, primary)
            except ExecError as exc:
                verdict["reason"] += "; could not point %s at %s (%s)" % (pod, primary, exc)
        for pod, extra in verdict.get("errant", {}).items():
            verdict["reason"] += "; %s is errant (%s): rebuild.yml -e pod=%s re-clones it" % (pod, extra, pod)
        if verdict["state"] == autopilot.FAILOVER:
            verdict["move"] = self.run_move("failover", None, {"quorum": verdict["agreeing"], "answered": verdict["answered"]})
            self.unreachable_since = None
        if verdict["state"] == autopilot.HANDOVER and verdict["target"]:
            verdict["move"] = self.run_move("switchover", verdict["target"], {"max_lag": self.max_lag})
        return verdict

    def pause(self, interval, started, now=None):
        """Seconds to wait before the next round, which starts interval
        seconds after this one did; sooner while the primary is unreachable,
        so that the round whose reads end failover_after seconds into the
        count does (its reads taking as long as this round's), rather than
        up to a round later."""
        now = time.monotonic() if now is None else now
        left = interval - (now - started)
        if self.unreachable_since is not None:
            left = min(left, self.unreachable_since + self.failover_after - self.read_took - now)
        return max(0.0, left)

    def resume(self, primary, epoch):
        """A recorded primary that fenced itself, writable again. The record
        first names it again at the next epoch (compare-and-swap), so a move
        a playbook runs meanwhile either finds the record changed and gives
        up, or changed it first, and then this gives up."""
        try:
            self.cluster.record_primary(primary, primary, epoch)
        except RecordMoved as exc:
            return "not unfenced: %s" % exc
        try:
            self.cluster.role(primary, "unfence", timeout=15)
        except ExecError as exc:
            return "could not unfence %s (%s)" % (primary, exc)
        return "unfenced %s, the primary at epoch %d" % (primary, epoch + 1)

    def reclone(self, pod, now):
        """A replica whose history is a prefix of the primary's, stopped on a
        position the primary no longer holds: its volume and pod are deleted,
        the StatefulSet gives it an empty volume, which clones. Once per
        RECLONE_EVERY seconds a pod, so a clone under way is left alone."""
        if now - self.recloned.get(pod, -RECLONE_EVERY) < RECLONE_EVERY:
            return "%s re-cloning" % pod
        self.recloned[pod] = now
        self.cluster.reclone(pod)
        return "re-cloning %s (its position is gone from the primary's binary logs)" % pod

    def run_move(self, mode, target, params):
        """primary_move's failover or switchover, as the playbooks run it."""
        params = dict({"force": False, "timeout": self.move_timeout, "max_lag": None, "quorum": None, "answered": None}, **params)
        try:
            getattr(self.move(Driver(params, self.tell), self.cluster), mode)(target)
        except Ended as ended:
            return dict(ended.result, ok=ended.ok, msg=str(ended))
        return {"ok": False, "msg": "the %s returned without a result" % mode}


class Leadership:
    """The Lease renewed every interval seconds in a thread of its own.
    leading(): this copy held it at the last renewal, and that renewal is
    recent (a stuck thread does not lead); error: why the last renewal
    failed (None when it did not)."""

    def __init__(self, lease, interval):
        self.lease, self.interval = lease, interval
        self.held, self.at, self.error = False, 0.0, None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="lease")
        self._thread.start()

    def _renew(self):
        while not self._stopping.is_set():
            try:
                held, error = self.lease.hold(), None
            except Exception as exc:  # the API unreachable: not leading until it answers
                held, error = False, "%s: %s" % (type(exc).__name__, exc)
            self.held, self.at, self.error = held, time.monotonic(), error
            self._stopping.wait(self.interval)

    def leading(self):
        return self.held and time.monotonic() - self.at < self.lease.duration / 2.0

    def release(self, attempts=3):
        """Stop renewing, then give the Lease up (a renewal racing the
        release is a 409: read again). True when released."""
        self._stopping.set()
        self._thread.join(timeout=self.lease.duration)
        for _attempt in range(attempts):
            if self.lease.release():
                return True
        return False


def main(environ, log=sys.stdout):
    """In the autopilot's pod: NAMESPACE, STATEFULSET_NAME, POD_NAME (the
    Lease holder's identity), FAILOVER_AFTER and INTERVAL (seconds)."""
    api = KubeApi.in_cluster(environ)
    namespace, name = environ["NAMESPACE"], environ["STATEFULSET_NAME"]
    interval, said = float(environ.get("INTERVAL", 1)), None
    counted_at, counted = time.monotonic(), api.requests
    leadership = Leadership(Lease(api, namespace, name + "-autopilot", environ["POD_NAME"]), RENEW_EVERY)
    lock = threading.Lock()

    def tell(text):
        with lock:
            log.write(text + "\n")
            log.flush()

    # The handler only starts a thread: the main thread may hold a lock the
    # stop needs (the log's, the API client's) at the moment of the signal.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop, args=(leadership, tell), daemon=True).start())

    controller = Controller(Cluster(api, namespace, name), leadership.leading, failover_after=float(environ["FAILOVER_AFTER"]),
                            tell=lambda step: tell("  move: " + step))
    current = {"started": None}
    watch_rounds(current, threading.get_ident(), tell)
    while True:
        started = current["started"] = time.monotonic()
        try:
            verdict = controller.round(started)
        except Exception as exc:  # the API or a pod failing this round: the next one tries again
            verdict = {"state": "error", "reason": "%s: %s" % (type(exc).__name__, exc)}
        current["started"] = None
        took = time.monotonic() - started
        if took > SLOW_ROUND:
            verdict = dict(verdict or {"state": "follower", "reason": ""})
            verdict["reason"] += " (the round took %.0f s)" % took
        if verdict is None:
            line = "follower: " + ("the Lease cannot be renewed (%s)" % leadership.error if leadership.error
                                   else "another copy holds the Lease")
        else:
            line = "%s: %s" % (verdict["state"], verdict["reason"])
        if verdict and "move" in verdict:
            line += "; %s" % verdict["move"]
        lines = [line] if line != said else []
        if started - counted_at >= 60:
            lines.append("cost: %d API requests in the last %.0f s" % (api.requests - counted, started - counted_at))
            counted_at, counted = started, api.requests
        for text in lines:
            tell(text)
        said = line
        time.sleep(controller.pause(interval, started))


def stop(leadership, tell):
    """SIGTERM (a rollout, a drain): the Lease is handed over at once rather
    than once it expired (python as PID 1 would ignore the signal until the
    kubelet kills it). A move cut short is what a killed copy leaves: the
    record's compare-and-swap keeps it harmless."""
    try:
        released = leadership.release()
    except Exception as exc:  # the API unreachable: the Lease expires by itself
        tell("stopping: the Lease not released (%s)" % exc)
    else:
        tell("stopping: %s" % ("the Lease released" if released else "not holding the Lease"))
    os._exit(0)


def watch_rounds(current, thread, tell, slow=SLOW_ROUND):
    """Tell where a round longer than SLOW_ROUND is, once a round: a round
    that hangs stops the autopilot, and its log would otherwise stay silent."""
    def watch():
        told = None
        while True:
            time.sleep(min(1.0, slow / 4.0))
            started = current["started"]
            if started is None or started == told or time.monotonic() - started < slow:
                continue
            told = started
            frame = sys._current_frames().get(thread)
            where = [("%s:%d %s" % (f.filename.rsplit("/", 1)[-1], f.lineno, f.name))
                     for f in (traceback.extract_stack(frame) if frame else [])]
            tell("slow round: %.0f s so far, at %s" % (time.monotonic() - started, " < ".join(reversed(where[-8:]))))

    threading.Thread(target=watch, daemon=True, name="watch-rounds").start()
