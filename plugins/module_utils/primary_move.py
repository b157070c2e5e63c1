"""Switchover and failover of a MariaDB StatefulSet's primary: the checks,
the order of the steps, the deadline and the rollback. The module
move_primary runs it; the role changes themselves are role.sh in the pods."""

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import RecordMoved
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError

# role.sh fence waits this long for commits in flight (lock_wait_timeout).
FENCE_LOCK_WAIT = 10
# role.sh promote and replicate get at least this long, whatever the
# deadline left: cut short, the script may still finish in the pod, and the
# move would leave a writable pod it never recorded.
ROLE_CHANGE_TIMEOUT = 30.0
# Seconds a silent old primary's role.sh crash and mark get (crash_silent).
CRASH_TIMEOUT = 3


class MoveFailed(Exception):
    """A step failed; the message says which and why."""


class RecordLost(MoveFailed):
    """Another move recorded `primary` while this one ran: this one's pick
    replicates from it, and nothing this move did to the others is undone."""

    def __init__(self, message, primary):
        super().__init__(message)
        self.primary = primary


class Move:
    """One run of the module: its deadline, the steps taken, the result."""

    def __init__(self, module, cluster):
        self.module, self.cluster = module, cluster
        self.started = time.monotonic()
        self.deadline = None
        self.fence_started = None
        self.crashed = False  # role.sh isolate or crash killed the old primary: it restarts as a replica
        self.crashing = None  # crash_silent's role.sh crash and mark, under way
        self.silent = False  # the autopilot's probe of the old primary went unanswered (frozen, cut off)
        self.previous, self.epoch = cluster.read_record()
        self.pods = cluster.pods(cluster.replicas())
        # The replicas that agreed the primary is gone (the autopilot's
        # failover); move_primary has no such option.
        self.quorum = module.params.get("quorum")
        self.result = dict(changed=False, previous=self.previous, primary=self.previous, epoch=self.epoch, positions={},
                           steps=[], restarted=[], problems=[])

    def start_deadline(self):
        """The deadline covers the move itself, from the first change on."""
        self.deadline = time.monotonic() + self.module.params["timeout"]

    def left(self):
        """Seconds left before the deadline (at least 1, for the last call); 30 before the move."""
        if self.deadline is None:
            return 30.0
        return max(1.0, self.deadline - time.monotonic())

    def step(self, text):
        self.result["steps"].append("%.2f %s" % (time.monotonic() - self.started, text))
        tell = getattr(self.module, "tell", None)
        if tell:
            tell(self.result["steps"][-1])

    def fail(self, msg):
        if self.crashing:  # what became of the silent old primary, whatever became of the failover
            self.crash_done(self.previous)
        self.module.fail_json(msg=msg, **self.result)

    def states(self, pods):
        states, errors = {}, {}
        for pod, state, error in self.cluster.read_states(pods, timeout=min(10, self.left())):
            if error:
                errors[pod] = error
            else:
                states[pod] = state
                self.result["positions"][pod] = state["gtid_current_pos"]
        return states, errors

    def answers(self, pod):
        try:
            self.cluster.sql(pod, "SELECT 1", timeout=5)
            return True
        except ExecError:
            return False

    def scripts_mounted(self, pods):
        """Pods started by an older release receive role.sh with the updated
        scripts ConfigMap, which the kubelet refreshes in running pods at its
        next sync; annotating them makes it refresh now. Waits up to 90 s."""
        missing = [pod for pod in pods if not self.cluster.has_role_script(pod)]
        if not missing:
            return
        self.cluster.announce_primary(missing, self.previous)
        deadline = time.monotonic() + 90
        while missing and time.monotonic() < deadline:
            time.sleep(1)
            missing = [pod for pod in missing if not self.cluster.has_role_script(pod)]
        if missing:
            self.fail("role.sh is not mounted in %s yet (pods of an older release): run deploy.yml first" % ", ".join(missing))
        self.step("waited for the kubelet to mount role.sh in pods of an older release")

    def wait_applied(self, pod, position):
        """Wait until pod has applied `position`; MASTER_GTID_WAIT returns 0 then, -1 on timeout."""
        if not position:
            return
        seconds = max(1, int(self.deadline - time.monotonic()))
        out = self.cluster.sql(pod, "SELECT MASTER_GTID_WAIT('%s', %d)" % (gtid.format_gtids(gtid.parse(position)), seconds),
                               timeout=seconds + 10).strip()
        if out != "0":
            raise MoveFailed("%s did not apply the primary's transactions up to %s within the deadline" % (pod, position))
        self.step("%s applied %s" % (pod, position))

    def promote(self, pod):
        """Promote pod, record it and move the write Service. On failure the
        pod replicates again, from the old primary or from the one another
        move recorded meanwhile: a move never leaves a writable pod that the
        record does not name."""
        step = "promoting " + pod
        try:
            self.cluster.role(pod, "promote", timeout=max(ROLE_CHANGE_TIMEOUT, self.left()))
            self.step("promoted " + pod)
            step = "recording %s as the primary" % pod
            epoch = self.cluster.record_primary(pod, self.previous, self.epoch)
        except RecordMoved as exc:
            if exc.primary != pod:
                self.demote(pod, exc.primary)
            raise RecordLost("recording %s as the primary failed (%s)" % (pod, exc), exc.primary)
        except Exception as exc:  # ExecError, ApiError or a connection error: the record was not changed
            self.demote(pod, self.previous)
            raise MoveFailed("%s failed (%s); %s replicates from %s again" % (step, exc, pod, self.previous))
        self.result.update(changed=True, primary=pod, epoch=epoch)
        self.step("recorded %s as the primary at epoch %d; the write Service selects it" % (pod, epoch))

    def demote(self, pod, primary):
        try:
            self.cluster.role(pod, "replicate", self.cluster.ordinal(primary), timeout=ROLE_CHANGE_TIMEOUT)
            self.step("%s replicates from %s" % (pod, primary))
        except ExecError as exc:  # the autopilot isolates a writable pod the record does not name
            self.result["problems"].append("%s: could not be made to replicate from %s (%s)" % (pod, primary, exc))

    def follow_winner(self, lost, pods):
        """Another move recorded its primary: the other replicas follow it, and
        the write Service, which this move may have emptied after that move
        pointed it, selects it."""
        self.result["primary"] = lost.primary
        self.follow(pods)
        try:
            self.cluster.point_write_service(lost.primary)
        except Exception as exc:  # ApiError or a connection error: say so
            self.result["problems"].append("the write Service could not be pointed at %s (%s): run deploy.yml"
                                           % (lost.primary, exc))

    def follow(self, pods):
        """Point each pod at the new primary and make the kubelets refresh the record."""
        primary = self.result["primary"]
        for pod in pods:
            try:
                self.cluster.role(pod, "replicate", self.cluster.ordinal(primary), timeout=30)
                self.step("%s replicates from %s" % (pod, primary))
            except ExecError as exc:
                self.result["problems"].append("%s: not pointed at %s (%s)" % (pod, primary, exc))
        for pod in self.cluster.announce_primary(self.pods, primary):
            self.result["problems"].append("%s: could not be annotated with the new primary" % pod)

    def switchover(self, target):
        old = self.previous
        if target == old:
            self.fail("target (-e primary) %s is already the primary: nothing to do" % target)
        # The primary last: a replica read after it may already be ahead of
        # its snapshot, which would look like errant transactions.
        states, errors = self.states([pod for pod in self.pods if pod != old])
        primary_state, primary_error = self.states([old])
        states.update(primary_state)
        errors.update(primary_error)
        if old in errors:
            self.fail("the primary %s does not answer (%s): a switchover needs it; failover.yml promotes a replica "
                      "without it" % (old, errors[old]))
        if target not in states:
            self.fail("target (-e primary) %s cannot be read: %s" % (target, errors.get(target)))
        problems = replication.problems(target, states[target], False, self.cluster.host(old), self.module.params["max_lag"])
        errant = gtid.errant(states[target]["gtid_current_pos"], states[old]["gtid_binlog_state"], states[old]["gtid_slave_pos"])
        if errant:
            problems.append("%s: errant GTIDs %s" % (target, gtid.format_gtids(errant)))
        if problems:
            self.fail("target (-e primary) %s is not a healthy, caught-up replica of %s: %s" % (target, old, "; ".join(problems)))
        if self.module.check_mode:
            self.module.exit_json(**self.result)
        self.scripts_mounted(sorted(states))

        self.start_deadline()
        fenced = False
        try:
            self.fence_started = time.monotonic()
            # Longer than role.sh's own lock wait: the fence never lands after a rollback.
            position = (self.cluster.role(old, "fence", timeout=max(FENCE_LOCK_WAIT + 5.0, self.left())).strip().splitlines()
                        or [""])[-1]
            fenced = True
            self.step("fenced %s at %s" % (old, position))
            self.wait_applied(target, position)
            self.promote(target)
        except RecordLost as exc:
            # The old primary stays fenced: the other move's primary takes the writes.
            self.follow_winner(exc, [pod for pod in self.pods if pod not in (target, exc.primary)])
            self.fail("switchover to %s failed: %s; the others replicate from %s" % (target, exc, exc.primary))
        except (ExecError, MoveFailed) as exc:
            self.fail("switchover to %s failed: %s. %s" % (target, exc, self.roll_back(old, fenced)))
        self.follow([pod for pod in self.pods if pod != target])
        self.module.exit_json(**self.result)

    def roll_back(self, old, fenced):
        """Undo the fence: the old primary is writable again (a target that
        was promoted replicates from it again: promote undid itself)."""
        undone = []
        try:
            if not fenced:
                # The fence's exec failed early (a broken stream): role.sh may
                # still be waiting for locks in the pod. Unfence after it gave up.
                time.sleep(max(0.0, self.fence_started + FENCE_LOCK_WAIT + 2 - time.monotonic()))
            self.cluster.role(old, "unfence", timeout=30)
            if self.cluster.sql(old, "SELECT @@global.read_only", timeout=10).strip() not in ("0", "OFF"):
                raise MoveFailed("%s is still read-only" % old)
            undone.append("%s is writable" % old)
        except Exception as exc:  # report what could not be undone rather than hide the first failure
            return "Rolling back failed (%s) after: %s. Check the cluster with verify.yml." % (exc, ", ".join(undone) or "nothing")
        return "Rolled back: %s; %s is the primary." % (", ".join(undone), old)

    def failover(self, target):
        old = self.previous
        if target == old:
            self.fail("target (-e primary) %s is the primary being failed over from: name a replica, or leave it "
                      "out to promote the most advanced one" % target)
        # A Ready pod counts as alive even when the exec API cannot reach it:
        # its server may still take writes. Not so when a quorum of replicas
        # lost it (the autopilot): a dead node's pods read Ready for 40-50 s.
        # The autopilot read the old primary this round: no second probe (a
        # frozen server would hold it for the probe's whole timeout).
        answered = self.module.params.get("answered")
        self.silent = answered is False
        alive = (self.answers(old) if answered is None else answered) or (not self.quorum and bool(self.cluster.pod_ready(old)))
        # The autopilot's quorum lost a primary that still answers: its pod's
        # network is cut, the exec path is not. It is fenced, like force.
        why = "force" if self.module.params["force"] else "its replicas lost it" if self.quorum else None
        if alive:
            if why is None:
                self.fail("the primary %s still answers (or its pod is Ready): use switchover.yml to move it, or "
                          "-e force=true to fail over anyway (it is made read-only first)" % old)
            if not self.module.check_mode:
                try:
                    # Cut off, its commits in flight wait for acknowledgements
                    # that never come: isolate crashes the server, which
                    # rolls them back as it restarts read-only.
                    said = self.cluster.role(old, "isolate" if self.quorum else "fence", timeout=15).split()
                    self.crashed = said[-1:] == ["crashing"]
                    self.step("%s %s (%s)" % ("crashed" if self.crashed else "fenced", old, why))
                except ExecError as exc:
                    self.step("could not fence %s (%s); going on (%s)" % (old, exc, why))
        elif self.silent and not self.module.check_mode:
            self.crash_silent(old)
        self.start_deadline()
        candidates, errors = self.states([pod for pod in self.pods if pod != old])
        if errors and not self.module.params["force"]:
            self.fail("%s: a replica that cannot be read may hold acknowledged writes the others lack; bring it "
                      "back, or -e force=true to fail over without it" % "; ".join(errors.values()))
        skipped = dict(errors)
        for pod, state in list(candidates.items()):
            if not state["replicating"] or state["sql_running"] != "Yes":
                skipped[pod] = "%s: not a candidate (replication %s, SQL thread %s%s)" % (
                    pod, "configured" if state["replicating"] else "not configured", state["sql_running"],
                    replication.error_suffix(state["last_sql_error"]))
                del candidates[pod]
        if not candidates:
            self.fail("no replica can be promoted: %s" % ("; ".join(skipped.values()) or "the primary has no replicas"))
        if target is not None and target not in candidates:
            self.fail("target (-e primary) %s is not a candidate: %s" % (target, skipped.get(target, "not a replica of this cluster")))
        if self.module.check_mode:
            self.module.exit_json(**self.result)
        self.scripts_mounted(sorted(candidates))
        try:
            # An old primary restarting now must not take writes that no
            # replica receives (their IO threads stop below).
            self.cluster.point_write_service(None)
            self.step("the write Service selects no pod until the new primary is recorded")
            # Nothing more arrives from the old primary; apply what did.
            # In parallel: against a frozen primary each waits out its IO
            # thread's connection attempt (slave_net_timeout).
            with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
                for stopped in [pool.submit(self.cluster.sql, pod, "STOP SLAVE IO_THREAD", timeout=self.left())
                                for pod in candidates]:
                    stopped.result()
            for pod, state in self.read_all(candidates).items():
                self.wait_applied(pod, state["gtid_io_pos"])
            positions = {pod: state["gtid_current_pos"] for pod, state in self.read_all(candidates).items()}
        except Exception as exc:  # ExecError, MoveFailed, or the API refusing the Service change
            self.abandon(candidates)
            self.fail("failover stopped before promoting anyone: %s; the replicas replicate from %s again" % (exc, old))
        chosen = gtid.most_advanced(positions)
        if chosen is None:
            self.fail("the replicas' histories diverged (%s): none holds every transaction; nothing promoted" % positions)
        if target is not None:
            if not gtid.covers(positions[target], positions[chosen]):
                self.fail("target (-e primary) %s is behind %s (%s against %s): promoting it would lose transactions"
                          % (target, chosen, positions[target], positions[chosen]))
            chosen = target
        self.check_nothing_left_behind(chosen, positions[chosen], skipped, candidates)
        if why is None and (self.answers(old) or self.cluster.pod_ready(old)):
            self.abandon(candidates)
            self.fail("the primary %s came back during the failover: nothing promoted; it is the primary again "
                      "(switchover.yml moves it)" % old)
        self.step("%s is the most advanced replica at %s" % (chosen, positions[chosen]))
        try:
            self.promote(chosen)
        except RecordLost as exc:
            self.follow_winner(exc, [pod for pod in self.pods if pod not in (chosen, old, exc.primary)])
            self.fail("failover to %s failed: %s; the others replicate from %s" % (chosen, exc, exc.primary))
        except (ExecError, MoveFailed) as exc:
            self.abandon([pod for pod in candidates if pod != chosen])
            self.fail("%s; the other replicas replicate from %s again" % (exc, old))
        # Skipped replicas too: a broken one stays broken, but not pointed at the old primary.
        self.follow([pod for pod in self.pods if pod not in (chosen, old)])
        if self.crashing:
            self.crash_done(old)
        if old in self.pods:
            self.rejoin(old)
        self.module.exit_json(**self.result)

    def crash_silent(self, old):
        """A frozen server would be writable again the moment it thaws:
        killed now, without SQL, it restarts read-only instead. Its datadir
        is marked from the sidecar too, at the same time: a server container
        that is restarting (mariadbd killed) answers no exec, and its mounted
        record may still name it. A server the exec API cannot reach (its
        node gone, its pod frozen) is left to the quorum. Started in the
        background, so a pod that holds the exec for the whole timeout does
        not hold the promotion; crash_done() says how it went."""
        pool = ThreadPoolExecutor(max_workers=2)
        # Not after this exec's timeout: run once its frozen pod thaws, it
        # would kill a server that has fenced itself and replicates again.
        until = int(time.time()) + CRASH_TIMEOUT
        self.crashing = (pool.submit(self.cluster.role, old, "crash", until, timeout=CRASH_TIMEOUT),
                         pool.submit(self.cluster.role, old, "mark", timeout=CRASH_TIMEOUT, container="sidecar"))
        pool.shutdown(wait=False)

    def crash_done(self, old):
        """What crash_silent came to: whether the old primary was crashed."""
        (crash, mark), self.crashing = self.crashing, None
        marking = mark.exception()  # both are bounded by CRASH_TIMEOUT: done with the crash, or nearly
        try:
            self.crashed = crash.result().split()[-1:] == ["crashing"]
        except ExecError as exc:
            marked = "marked to start read-only" if marking is None else "not marked either (%s)" % marking
            self.step("could not crash %s, which does not answer (%s); %s" % (old, exc, marked))
            return
        self.step("crashed %s, which does not answer" % old if self.crashed else
                  "%s does not answer: its mariadbd is PID 1 (an earlier release), only marked to start read-only" % old)

    def read_all(self, pods):
        """States of all these pods; a pod that cannot be read stops the failover
        (it may hold the most transactions)."""
        states, errors = self.states(list(pods))
        if errors:
            raise MoveFailed("; ".join(errors.values()))
        return states

    def check_nothing_left_behind(self, chosen, position, skipped, candidates):
        """A replica that is not a candidate (its SQL thread stopped) may still
        have received, and acknowledged, transactions the chosen one lacks."""
        if self.module.params["force"]:
            return
        states, _errors = self.states([pod for pod in skipped if pod in self.pods])
        behind = ["%s received up to %s" % (pod, state["gtid_io_pos"]) for pod, state in sorted(states.items())
                  if state["gtid_io_pos"] and not gtid.covers(position, state["gtid_io_pos"])]
        if behind:
            self.abandon(candidates)
            self.fail("%s (at %s) lacks transactions that only broken replicas received (%s): repair them, or "
                      "-e force=true to promote it anyway" % (chosen, position, "; ".join(behind)))

    def abandon(self, pods):
        """The failover did not happen: restart the IO threads it stopped and
        point the write Service at the old primary again."""
        for pod in pods:
            try:
                self.cluster.sql(pod, "START SLAVE IO_THREAD", timeout=10)
            except ExecError:
                pass  # verify.yml names a replica that does not replicate
        try:
            self.cluster.point_write_service(self.previous)
        except Exception as exc:  # ApiError or a connection error: say so, keep the first failure
            self.result["problems"].append("the write Service could not be pointed at %s again (%s): run deploy.yml"
                                           % (self.previous, exc))

    def rejoin(self, old):
        """The old primary: a pod that is not Ready starts again through its init
        containers; a fenced, answering one replicates (refused if errant); a
        crashed one is left to restart, and a silent Ready one that could not
        be crashed is left as it is (the autopilot isolates it if it comes
        back writable, and points it at the new primary once it replicates
        from nobody)."""
        if self.crashed:
            self.step("%s restarts read-only, its unacknowledged commits rolled back" % old)
            return
        try:
            ready = self.cluster.pod_ready(old)
            if ready is False:
                self.cluster.delete_pod(old)
                self.result["restarted"].append(old)
                self.step("deleted the old primary's pod %s: it starts again as a replica" % old)
            elif ready is None:
                # Deleted by someone else: the StatefulSet creates it again.
                self.result["restarted"].append(old)
                self.step("the old primary's pod %s is being created again: it starts as a replica" % old)
        except Exception as exc:  # ApiError or a connection error: the move itself is done
            self.result["problems"].append("%s: could not restart the old primary's pod (%s): delete it" % (old, exc))
            return
        if ready and self.silent:
            # A frozen server would hold role.sh replicate for its whole timeout.
            self.step("%s did not answer the autopilot: left to it" % old)
        elif ready:
            self.follow([old])
