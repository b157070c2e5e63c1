"""What an object store holds for a cluster, and restore plans: no I/O.

The input is what catalog.sh (the pods' scripts) prints: one line
"OBJECTS <rclone lsjson>" with every object and its size, then one line per
backup manifest (MANIFEST), archived binary log index (BINLOG), timeline
marker (ARCHIVED) and divergence (DIVERGED), each a JSON document. Paths are
relative to the cluster's root, TIMELINE/backups/ID/..., TIMELINE/binlogs/...
and TIMELINE/divergences/EPOCH.json.

A timeline is one cluster's identity (the record's key timeline: each
cluster deploy.yml or restore.yml creates has its own), and a backup's id,
TIME-TIMELINE, carries it: clusters that share a store path (staging and
production, a DR region) never share an id, and a restore takes one
timeline's backups and logs only.

The cluster writes one GTID domain, so the sequence number orders every
transaction of a timeline (gtid_strict_mode), whichever pod wrote it. Until
a primary archived transactions that no replica received and a replica took
over at a later epoch of the record (archive-binlogs.sh records that as a
divergence after the last sequence number both histories hold): past it the
archive holds two histories, and a backup is rolled forward along its own
epoch's only. Manifests and indexes without an epoch are of epoch 0.
"""

import json
import re
from datetime import datetime, timezone

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import gtid as gtid_utils


class PlanError(Exception):
    """A restore that cannot be done; the message names the variable."""


def parse(lines):
    catalog = {"objects": {}, "manifests": [], "binlogs": [], "archived": {}, "divergences": []}
    for line in lines:
        kind, payload = (line.strip().split(" ", 1) + [""])[:2]
        if kind == "OBJECTS":
            for entry in json.loads(payload or "[]"):
                catalog["objects"][entry["Path"]] = entry["Size"]
        elif kind == "MANIFEST":
            catalog["manifests"].append(json.loads(payload))
        elif kind == "BINLOG":
            catalog["binlogs"].append(json.loads(payload))
        elif kind == "ARCHIVED":
            marker = json.loads(payload)
            catalog["archived"][marker["timeline"]] = marker
        elif kind == "DIVERGED":
            catalog["divergences"].append(json.loads(payload))
    return catalog


def seq(position):
    """The sequence number of a one-domain GTID position; 0 when empty."""
    gtids = gtid_utils.parse(position)
    if len({g[0] for g in gtids}) > 1:
        raise ValueError("position %r spans several GTID domains" % position)
    return max(g[2] for g in gtids) if gtids else 0


def utc(epoch):
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text):
    """Epoch seconds of a UTC time 'YYYY-MM-DD HH:MM:SS' (or ISO, with T and Z)."""
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})Z?$", (text or "").strip())
    if not match:
        raise ValueError("not a UTC time 'YYYY-MM-DD HH:MM:SS': %r" % text)
    when = datetime.strptime(" ".join(match.groups()), "%Y-%m-%d %H:%M:%S")
    return int(when.replace(tzinfo=timezone.utc).timestamp())


def backups(catalog):
    """Every backup, oldest first, with its state: complete, damaged or incomplete.
    Ids of an earlier release lack the timeline: the same one can be in two."""
    found = {}
    for path in catalog["objects"]:
        match = re.match(r"^([a-z0-9]+)/backups/(\d{8}T\d{6}Z(-[a-z0-9]+)?)/backup\.mbstream$", path)
        if match:
            found[(match.group(2), match.group(1))] = {
                "id": match.group(2), "timeline": match.group(1),
                "state": "incomplete (no manifest: still running, or it failed)"}
    for manifest in catalog["manifests"]:
        entry = dict(manifest, finished_utc=utc(manifest["finished"]), state="complete")
        size = catalog["objects"].get("%s/%s" % (manifest["timeline"], manifest["object"]))
        if size is None:
            entry["state"] = "damaged: its object is missing"
        elif size != manifest["size"]:
            entry["state"] = "damaged: its object is %d bytes, the manifest says %d" % (size, manifest["size"])
        found[(manifest["id"], manifest["timeline"])] = entry
    return [found[key] for key in sorted(found)]


def _divergences(catalog, timeline):
    return [d for d in catalog["divergences"] if d["timeline"] == timeline]


def divergence(catalog, backup):
    """The divergence BACKUP cannot be rolled past, the first one, or None:
    one recorded at a later epoch than the backup's, whose new primary never
    had what the archive holds after it."""
    later = [d for d in _divergences(catalog, backup["timeline"]) if backup.get("epoch", 0) < d["epoch"]]
    return min(later, key=lambda d: d["after_seq"]) if later else None


def _archived_binlogs(catalog, backup):
    """The binary logs of BACKUP's timeline and history whose object is there
    at its indexed size, in order: past a divergence, only the logs of its
    epoch or a later one, and none for a backup of an earlier epoch."""
    files = []
    divergences = _divergences(catalog, backup["timeline"])
    for index in catalog["binlogs"]:
        path = "%s/%s" % (index["timeline"], index["object"])
        if index["timeline"] != backup["timeline"] or catalog["objects"].get(path) != index["size"]:
            continue
        entry = dict(index, path=path, first_seq=seq(index["first_gtid"]), last_seq=seq(index["last_gtid"]))
        if not any(entry["last_seq"] > d["after_seq"] and min(backup.get("epoch", 0), index.get("epoch", 0)) < d["epoch"]
                   for d in divergences):
            files.append(entry)
    return sorted(files, key=lambda f: (f["first_seq"], f["last_seq"]))


def chain(catalog, backup, until=None):
    """The binary logs that roll BACKUP forward (up to epoch UNTIL), and the
    first gap: None, or (last sequence number held, first one after it)."""
    cursor = seq(backup.get("gtid", ""))
    selected = []
    for binlog in _archived_binlogs(catalog, backup):
        if binlog["last_seq"] <= cursor:
            continue
        if until is not None and binlog["first_time"] >= until:
            break
        if binlog["first_seq"] > cursor + 1:
            return selected, (cursor, binlog["first_seq"])
        selected.append(binlog)
        cursor = binlog["last_seq"]
    return selected, None


def recoverable_until(catalog, backup):
    """Epoch seconds up to which BACKUP can be rolled forward, and the gap
    that ends it early (None when the archive is whole)."""
    selected, gap = chain(catalog, backup)
    last_good = max(backup["finished"], selected[-1]["last_time"] if selected else 0)
    if gap:
        return last_good, gap
    if divergence(catalog, backup):
        return last_good, None
    marker = catalog["archived"].get(backup["timeline"])
    if not marker:
        return backup["finished"], None
    # The marker vouches for every transaction up to its position: those the
    # usable logs lack are in logs missing or damaged.
    cursor = selected[-1]["last_seq"] if selected else seq(backup.get("gtid", ""))
    if seq(marker["gtid"]) > cursor:
        return last_good, (cursor, seq(marker["gtid"]) + 1)
    return max(backup["finished"], marker["time"]), None


def _version(text):
    match = re.match(r"^(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _timelines(complete):
    """'TIMELINE (N backups, the newest finished ... UTC)' for each timeline of COMPLETE."""
    found = {}
    for b in complete:
        found.setdefault(b["timeline"], []).append(b)
    return "; ".join("%s (%d backups, the newest finished %s UTC)" % (t, len(found[t]), found[t][-1]["finished_utc"])
                     for t in sorted(found))


def plan(catalog, backup_id="", point_in_time="", server_version="", timeline=""):
    """The restore to run: the backup, the binary logs in order and the stop time.

    backup_id picks the backup; otherwise the newest complete one that
    finished before point_in_time, of the one timeline the store holds, or
    of TIMELINE. Raises PlanError naming the variable.
    """
    every = backups(catalog)
    if timeline:
        if not any(b["timeline"] == timeline for b in every):
            raise PlanError("source=.../%s: the store holds no backup of timeline %s; it holds those of %s"
                            % (timeline, timeline, _timelines([b for b in every if b["state"] == "complete"]) or "none"))
        every = [b for b in every if b["timeline"] == timeline]
    complete = [b for b in every if b["state"] == "complete"]
    until = None
    if point_in_time:
        try:
            until = parse_time(point_in_time)
        except ValueError:
            raise PlanError("point_in_time=%s is not a UTC time 'YYYY-MM-DD HH:MM:SS'" % point_in_time)
    if backup_id:
        chosen = [b for b in every if b["id"] == backup_id]
        if not chosen:
            raise PlanError("backup=%s: no such backup in the store; it holds %s"
                            % (backup_id, ", ".join(b["id"] for b in complete) or "no complete backup"))
        if len(chosen) > 1:
            raise PlanError("backup=%s is the id of a backup of each of the timelines %s: name the one to restore, "
                            "-e source=NAMESPACE/NAME/TIMELINE" % (backup_id, ", ".join(b["timeline"] for b in chosen)))
        backup = chosen[0]
        if backup["state"] != "complete":
            raise PlanError("backup=%s is %s: nothing was restored" % (backup_id, backup["state"]))
    elif until is not None:
        if len({b["timeline"] for b in complete}) > 1:
            raise PlanError("point_in_time=%s: the store holds the backups of several clusters or timelines, %s: "
                            "name the one to restore, -e source=NAMESPACE/NAME/TIMELINE, or a backup, -e backup=<id>"
                            % (point_in_time, _timelines(complete)))
        before = [b for b in complete if b["finished"] <= until]
        if not before:
            raise PlanError("point_in_time=%s is before the oldest complete backup%s: nothing to restore from"
                            % (point_in_time, " (finished %s UTC)" % complete[0]["finished_utc"] if complete else ""))
        backup = before[-1]
    else:
        raise PlanError("restore.yml needs -e backup=<id> or -e point_in_time='YYYY-MM-DD HH:MM:SS' (UTC)")

    wanted, have = _version(server_version), _version(backup.get("server_version"))
    if wanted and have and wanted < have:
        raise PlanError("mariadb_version: the backup %s is of MariaDB %s, newer than %s: MariaDB data cannot be downgraded"
                        % (backup["id"], backup["server_version"], server_version))

    binlogs = []
    if until is not None:
        if until < backup["finished"]:
            raise PlanError("point_in_time=%s is before backup %s finished (%s UTC): pick an earlier backup"
                            % (point_in_time, backup["id"], backup["finished_utc"]))
        end, gap = recoverable_until(catalog, backup)
        if until > end:
            if gap:
                raise PlanError(
                    "point_in_time=%s is past a gap in the archive of timeline %s: the binary logs with the "
                    "transactions after sequence number %d and before %d are missing; it can restore up to %s UTC"
                    % (point_in_time, backup["timeline"], gap[0], gap[1], utc(end)))
            split = divergence(catalog, backup)
            if split:
                raise PlanError(
                    "point_in_time=%s crosses a divergence in the archive of timeline %s after sequence number %d: "
                    "the primary recorded at epoch %d (%s) never had the transactions archived after it, so the archive "
                    "holds two histories from there; backup %s can restore up to %s UTC, a backup taken after the "
                    "failover further" % (point_in_time, backup["timeline"], split["after_seq"], split["epoch"],
                                          split["pod"], backup["id"], utc(end)))
            raise PlanError("point_in_time=%s is after what the archive covers: up to %s UTC"
                            % (point_in_time, utc(end)))
        binlogs = chain(catalog, backup, until)[0]
    return {
        "backup": backup,
        "binlogs": [{"object": b["path"], "sha256": b["sha256"], "last_gtid": b["last_gtid"],
                     "last_time": b["last_time"]} for b in binlogs],
        "stop": utc(until) if until is not None else "",
        "stop_epoch": until if until is not None else 0,
    }


def verification_plan(catalog, timeline, gtid):
    """What a backup verification restores (verify-backup.sh): the newest
    complete backup of TIMELINE at or before GTID, the position its source's
    checksums were read at, and the binary logs that roll it forward to
    exactly GTID. Raises PlanError."""
    stop = seq(gtid)
    complete = [b for b in backups(catalog) if b["state"] == "complete" and b["timeline"] == timeline]
    before = [b for b in complete if seq(b.get("gtid", "")) <= stop]
    if not before:
        raise PlanError("the store holds no complete backup of timeline %s at or before GTID %s%s"
                        % (timeline, gtid or "(empty)", " (the oldest is at %s)" % complete[0]["gtid"] if complete else ""))
    backup = before[-1]
    selected, gap = chain(catalog, backup)
    cursor, binlogs = seq(backup.get("gtid", "")), []
    for binlog in selected:
        if cursor >= stop:
            break
        binlogs.append(binlog)
        cursor = binlog["last_seq"]
    if cursor < stop:
        if gap:
            raise PlanError("the archive of timeline %s lacks the binary logs with the transactions after sequence "
                            "number %d and before %d: backup %s cannot be rolled forward to GTID %s"
                            % (timeline, gap[0], gap[1], backup["id"], gtid))
        raise PlanError("the archive of timeline %s rolls backup %s forward up to sequence number %d, not to GTID %s"
                        % (timeline, backup["id"], cursor, gtid))
    return {"backup": backup, "stop_gtid": gtid,
            "binlogs": [{"object": b["path"], "sha256": b["sha256"], "last_gtid": b["last_gtid"]} for b in binlogs]}


def report(catalog):
    """Every backup, oldest first; a complete one with how far the archive
    can roll it forward (pitr_until_utc) and the gap that stops it, if any."""
    entries = []
    for backup in backups(catalog):
        if backup["state"] == "complete":
            end, gap = recoverable_until(catalog, backup)
            split = divergence(catalog, backup)
            backup = dict(backup, pitr_until_utc=utc(end),
                          gap=None if gap is None else {"after_seq": gap[0], "next_seq": gap[1]},
                          diverged=None if split is None else {"after_seq": split["after_seq"], "epoch": split["epoch"]})
        entries.append(backup)
    return entries


def summary(entries, timeline=""):
    """One line per backup of report(), for people; with TIMELINE (the
    cluster's own), the other timelines' backups are marked."""
    lines = []
    for b in entries:
        if b["state"] != "complete":
            line = "%s  %s" % (b["id"], b["state"])
        else:
            line = "%s  complete  MariaDB %s  %.1f MiB from %s at GTID %s, finished %s UTC; point-in-time recovery up to %s UTC" % (
                b["id"], b.get("server_version", "?"), b["size"] / 1048576.0, b.get("donor", "?"),
                b.get("gtid") or "(empty)", b["finished_utc"], b["pitr_until_utc"])
            if b["gap"]:
                line += " (the archive lacks the transactions after sequence number %d)" % b["gap"]["after_seq"]
            elif b.get("diverged"):
                line += " (the archive holds two histories after sequence number %d: epoch %d diverged)" % (
                    b["diverged"]["after_seq"], b["diverged"]["epoch"])
            if b.get("verified_result"):
                line += "; verified %s UTC at GTID %s: %s" % (
                    utc(b["verified_time"]), b.get("verified_gtid") or "(empty)", b["verified_result"])
        if timeline and b["timeline"] != timeline:
            line += " [timeline %s, of another cluster or of the one this cluster was restored from: retention leaves it]" \
                % b["timeline"]
        lines.append(line)
    return lines
