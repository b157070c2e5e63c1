"""The autopilot's decision, from the record and what each pod answered: no
I/O. The controller observes (cluster.read_states), keeps since when the
primary has been silent, and acts on the verdict with primary_move's
failover, the same implementation failover.yml runs.

A primary is failed over only when it has been silent for failover_after
seconds and a quorum agrees: more than half of the StatefulSet's pods answer,
replicate from the recorded primary and have lost it (their IO thread is not
running). The primary's side of a partition is a minority, so it never
promotes; without a quorum the cluster is "lost": nothing is promoted and the
verdict says who answered.

WIP (issue 17): not wired to a controller yet.
"""

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid

HEALTHY, FENCED, SUSPECT, FAILOVER, LOST = "healthy", "fenced", "suspect", "failover", "lost"
# The IO thread's error when the primary no longer holds the binary logs a
# replica needs: waiting never heals it, a new clone does.
POSITION_GONE = 1236


def has_lost(state, primary_host):
    """Whether a replica that answered says its primary is gone: it
    replicates from it and its IO thread does not run (reconnecting or
    stopped on an error)."""
    return bool(state["replicating"]) and state["primary_host"] == primary_host and state["io_running"] != "Yes"


def repairs(primary, states):
    """Replicas stuck on a position the primary cannot serve: those whose
    history is a prefix of the primary's can be cloned again; an errant one
    (transactions the primary never had) is only named."""
    found = {"reclone": [], "errant": {}}
    source = states[primary]
    for pod, state in sorted(states.items()):
        if pod == primary or state["io_running"] == "Yes" or state["last_io_errno"] != POSITION_GONE:
            continue
        extra = gtid.errant(state["gtid_current_pos"], source["gtid_binlog_state"], source["gtid_slave_pos"])
        if extra:
            found["errant"][pod] = gtid.format_gtids(extra)
        else:
            found["reclone"].append(pod)
    return found


def decide(primary, pods, states, silent_for, failover_after, primary_host):
    """The verdict for one round.

    primary: the recorded primary; pods: every pod of the StatefulSet;
    states: {pod: state} of the pods that answered; silent_for: seconds the
    primary has not answered (0 when it answered this round); primary_host:
    the host name replicas replicate from.
    """
    if primary in states:
        if states[primary]["read_only"]:
            return dict(state=FENCED, reason="the primary %s answers read-only: a move is in progress, or it "
                        "was fenced" % primary)
        # A writable server that is not the recorded primary: an old primary
        # thawed or reconnected after a failover. It must take no write.
        stray = sorted(pod for pod, state in states.items() if pod != primary and not state["read_only"])
        return dict(state=HEALTHY, reason="the primary %s answers" % primary, fence=stray, **repairs(primary, states))
    if silent_for < failover_after:
        return dict(state=SUSPECT, reason="the primary %s has not answered for %.0f s (failover after %d s)"
                    % (primary, silent_for, failover_after))
    agreeing = sorted(pod for pod, state in states.items() if pod != primary and has_lost(state, primary_host))
    needed = len(pods) // 2 + 1
    if len(agreeing) >= needed:
        return dict(state=FAILOVER, agreeing=agreeing,
                    reason="the primary %s has not answered for %.0f s and %d of %d pods have lost it (%s)"
                    % (primary, silent_for, len(agreeing), len(pods), ", ".join(agreeing)))
    return dict(state=LOST, agreeing=agreeing,
                reason="the primary %s has not answered for %.0f s, but only %d of %d pods answer and have lost it "
                "(%s; %d needed): nothing is promoted" % (primary, silent_for, len(agreeing), len(pods),
                                                          ", ".join(agreeing) or "none", needed))
