"""MariaDB GTID positions and states: parsing and comparing, no I/O.

A position (@@gtid_current_pos, @@gtid_binlog_pos) holds the last GTID of each
replication domain, "domain-server-seq" joined by commas. A binlog state
(@@gtid_binlog_state) holds the last GTID of each (domain, server) pair the
binary log has seen. With gtid_strict_mode, sequence numbers only grow within
a domain, whichever server wrote them.
"""

import re

_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def parse(text):
    """Parse a GTID list into [(domain, server, seq)]; "" is empty."""
    gtids = []
    for item in (text or "").replace("\n", "").split(","):
        item = item.strip()
        if not item:
            continue
        match = _GTID.match(item)
        if not match:
            raise ValueError("not a GTID: %r" % item)
        gtids.append(tuple(int(x) for x in match.groups()))
    return gtids


def format_gtids(gtids):
    return ",".join("%d-%d-%d" % g for g in sorted(gtids))


def sequences(position):
    """The sequence number reached in each domain of a position."""
    return {domain: seq for domain, _server, seq in parse(position)}


def covers(position, other):
    """Whether `position` has reached every domain of `other` at least as far."""
    mine = sequences(position)
    return all(mine.get(domain, -1) >= seq for domain, seq in sequences(other).items())


def most_advanced(positions):
    """The name whose position covers every other one, from {name: position},
    or None when no single position covers all (diverged histories)."""
    for name in sorted(positions, key=lambda n: (-sum(sequences(positions[n]).values()), n)):
        if all(covers(positions[name], other) for other in positions.values()):
            return name
    return None


def errant(position, primary_state, primary_slave_pos=""):
    """The GTIDs of `position` (a pod's gtid_current_pos) the primary never had.

    The last GTID of each domain is enough: with gtid_strict_mode a pod
    cannot apply the primary's later transactions on top of one of its own.
    The primary had (domain, server, seq) when its binary log saw that server
    reach seq (`primary_state`, its gtid_binlog_state) or, for history from
    before its own binary log (it was cloned), its gtid_slave_pos holds it.
    """
    known = {}
    for d, s, n in parse(primary_state) + parse(primary_slave_pos):
        known[(d, s)] = max(n, known.get((d, s), -1))
    return [(d, s, n) for d, s, n in parse(position) if known.get((d, s), -1) < n]
