"""The autopilot's decision, from the record and what each pod answered: no
I/O. The controller (autopilot_controller) observes, keeps since when the
primary has been unreachable, and acts on the verdict with primary_move, the
implementation failover.yml and switchover.yml run.

A primary is failed over only when it has been unreachable for
failover_after seconds (silent, or answering while its replicas cannot
reach it) and a quorum agrees: more than half of the StatefulSet's pods
answer, replicate from the recorded primary and have lost it (their IO
thread is reconnecting). A primary that still answers is fenced first. The
primary's side of a partition is a minority, so it never promotes; without
a quorum the cluster is "lost": nothing is promoted and the verdict says who
answered. A primary being deleted hands over to the most advanced healthy
replica; a replica whose position is gone is re-cloned unless errant. A
recorded primary that fenced itself (self-fence.sh) is made writable again
once a quorum replicates from it."""

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid, replication, rollout

HEALTHY, FENCED, SUSPECT, FAILOVER, LOST, HANDOVER, RESUME = (
    "healthy", "fenced", "suspect", "failover", "lost", "handover", "resume")


def has_lost(state, primary_host):
    """Whether a replica that answered says its primary is gone: it
    replicates from it and its IO thread is only trying to reconnect. A
    thread the primary refused (1236, an access error) reached it: that is
    no vote against it."""
    return bool(state["replicating"]) and state["primary_host"] == primary_host and replication.reconnecting(state)


def repairs(primary, states):
    """Replicas the primary cannot serve as they are. Stopped on a position
    it no longer holds (1236): cloned again. Read-only and replicating from
    nobody (an old primary whose move could not point it at the new one):
    pointed at the primary. Either only when its history is a prefix of the
    primary's; an errant one (transactions the primary never had) is only
    named."""
    found = {"reclone": [], "rejoin": [], "errant": {}}
    source = states[primary]
    for pod, state in sorted(states.items()):
        position_gone = state["io_running"] != "Yes" and state["last_io_errno"] == rollout.POSITION_GONE
        idle = state["read_only"] and not state["replicating"]
        if pod == primary or not (position_gone or idle):
            continue
        extra = gtid.errant(state["gtid_current_pos"], source["gtid_binlog_state"], source["gtid_slave_pos"])
        if extra:
            found["errant"][pod] = gtid.format_gtids(extra)
        else:
            found["reclone" if position_gone else "rejoin"].append(pod)
    return found


def agreeing(primary, pods, states, primary_host):
    """The replicas that answered and have lost the primary, and whether
    they are a quorum: more than half of the StatefulSet's pods."""
    lost = sorted(pod for pod, state in states.items() if pod != primary and has_lost(state, primary_host))
    return lost, len(lost) >= len(pods) // 2 + 1


def unreachable(primary, pods, states, primary_host):
    """Whether the primary serves nobody: it does not answer, or it answers
    (the exec path runs through the kubelet) but a quorum of its replicas
    cannot reach it, as when its pod's network is cut."""
    return primary not in states or agreeing(primary, pods, states, primary_host)[1]


def handover_target(primary, states, terminating, primary_host):
    """The replica a terminating primary hands over to: the most advanced
    of those that replicate from it with both threads running and are not
    terminating themselves; None when there is none."""
    positions = {pod: state["gtid_current_pos"] for pod, state in states.items()
                 if pod != primary and pod not in terminating and state["primary_host"] == primary_host
                 and state["io_running"] == "Yes" and state["sql_running"] == "Yes"}
    return gtid.most_advanced(positions) if positions else None


def resume(primary, pods, states, primary_host):
    """The verdict for a recorded primary that isolated itself
    (self-fence.sh: it lost its quorum) and answers read-only, replicating
    from nobody. Writable again once more than half of the pods, itself
    included, replicate from it with their IO thread connected: the others
    cannot promote behind its back. A replica that holds transactions it
    lacks (received, but the acknowledgement never arrived before the crash
    rolled them back) is failed over to instead, the most advanced, so
    nothing it holds turns errant."""
    source = states[primary]
    followers = sorted(pod for pod, state in states.items()
                       if pod != primary and state["replicating"] and state["primary_host"] == primary_host)
    ahead = [pod for pod in followers
             if gtid.errant(states[pod]["gtid_current_pos"], source["gtid_binlog_state"], source["gtid_slave_pos"])]
    connected = [pod for pod in followers if states[pod]["io_running"] == "Yes"]
    if ahead:
        return dict(state=FAILOVER, agreeing=followers, answered=True,
                    reason="the primary %s fenced itself, and %s hold transactions it lacks: failing over to the most "
                    "advanced replica" % (primary, ", ".join(ahead)))
    if len(connected) + 1 >= len(pods) // 2 + 1:
        return dict(state=RESUME,
                    reason="the primary %s fenced itself; %d of %d pods replicate from it again (%s): writable again"
                    % (primary, len(connected) + 1, len(pods), ", ".join(connected)))
    return dict(state=FENCED, reason="the primary %s fenced itself; it stays read-only until more than half of the pods "
                "replicate from it (now %d of %d: %s)" % (primary, len(connected) + 1, len(pods),
                                                          ", ".join([primary] + connected)))


def decide(primary, pods, states, unreachable_for, failover_after, primary_host, terminating=()):
    """The verdict for one round.

    primary: the recorded primary; pods: every pod of the StatefulSet;
    states: {pod: state} of the pods that answered; unreachable_for: seconds
    the primary has been unreachable (0 when it served this round);
    primary_host: the host name replicas replicate from; terminating: the
    pods being deleted (a drain, an eviction, kubectl delete pod), whose
    preStop hook waits for the primary to move away.
    """
    answers = primary in states
    lost, quorum = agreeing(primary, pods, states, primary_host)
    if answers and not quorum and states[primary]["read_only"]:
        if states[primary]["fenced"] and not states[primary]["replicating"] and primary not in terminating:
            return resume(primary, pods, states, primary_host)
        return dict(state=FENCED, reason="the primary %s answers read-only: a move is in progress, or it "
                    "was fenced" % primary)
    if answers and not quorum:
        # A writable server that is not the recorded primary: an old primary
        # thawed or reconnected after a failover. It must take no write, and
        # what it never had acknowledged must go (role.sh isolate).
        stray = sorted(pod for pod, state in states.items() if pod != primary and not state["read_only"])
        if primary in terminating:
            target = handover_target(primary, states, terminating, primary_host)
            if target:
                return dict(state=HANDOVER, target=target, isolate=stray,
                            reason="the primary %s is being deleted: switching over to %s" % (primary, target))
            # Every pod is stopping (teardown): nobody to hand over to, and
            # its preStop hook waits for the fence. Only fenced: it is still
            # the primary when the cluster is deployed again.
            return dict(state=HANDOVER, target=None, isolate=stray, fence=[primary],
                        reason="the primary %s is being deleted and no replica can take over: fenced" % primary)
        return dict(state=HEALTHY, reason="the primary %s answers" % primary, isolate=stray, **repairs(primary, states))
    silence = ("has not answered" if not answers else
               "answers but %d of %d pods cannot reach it (%s):" % (len(lost), len(pods), ", ".join(lost)))
    if unreachable_for < failover_after:
        return dict(state=SUSPECT, reason="the primary %s %s for %.0f s (failover after %d s)"
                    % (primary, silence, unreachable_for, failover_after))
    if quorum:
        return dict(state=FAILOVER, agreeing=lost, answered=answers,
                    reason="the primary %s %s for %.0f s and %d of %d pods have lost it (%s)"
                    % (primary, silence, unreachable_for, len(lost), len(pods), ", ".join(lost)))
    return dict(state=LOST, agreeing=lost,
                reason="the primary %s has not answered for %.0f s, but only %d of %d pods answer and have lost it "
                "(%s; %d needed): nothing is promoted" % (primary, unreachable_for, len(lost), len(pods),
                                                          ", ".join(lost) or "none", len(pods) // 2 + 1))
