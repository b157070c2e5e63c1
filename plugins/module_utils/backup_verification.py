"""The plan step of a backup verification Job (verify-backup.sh), run in the
autopilot's Python image with this code from the scripts ConfigMap.

In WORK: catalog (catalog.sh's output), source (a pod's table checksums,
table-checksums.sh, whose GTID line is the position to restore to) and
timeline (the cluster's). Writes WORK/plan, shell assignments for
verify-backup.sh and restore.sh, and WORK/binlogs, restore.sh's list; or
prints why no verification can be planned and returns 1.
"""

import os
import shlex
import sys

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import backup_catalog


def source_gtid(lines):
    for line in lines:
        if line.startswith("GTID"):
            return line[len("GTID"):].strip()
    raise backup_catalog.PlanError("the source's checksums hold no GTID line")


def plan_files(catalog_lines, source_lines, timeline):
    """(WORK/plan text, WORK/binlogs text) for the verification of TIMELINE."""
    plan = backup_catalog.verification_plan(backup_catalog.parse(catalog_lines), timeline, source_gtid(source_lines))
    backup = plan["backup"]
    values = [
        ("VERIFY_BACKUP_ID", backup["id"]),
        ("VERIFY_MANIFEST", "%s/backups/%s/manifest.json" % (backup["timeline"], backup["id"])),
        ("RESTORE_BACKUP", "%s/%s" % (backup["timeline"], backup["object"])),
        ("RESTORE_SIZE", str(backup["size"])),
        ("RESTORE_SHA256", backup["sha256"]),
        ("RESTORE_GTID", backup.get("gtid", "")),
        ("RESTORE_STOP_GTID", plan["stop_gtid"]),
    ]
    text = "".join("%s=%s\n" % (name, shlex.quote(value)) for name, value in values)
    binlogs = "".join("%s %s %s\n" % (b["object"], b["sha256"], b["last_gtid"]) for b in plan["binlogs"])
    return text, binlogs


def main(work):
    def read(name):
        with open(os.path.join(work, name)) as handle:
            return handle.read()
    try:
        plan, binlogs = plan_files(read("catalog").splitlines(), read("source").splitlines(), read("timeline").strip())
    except (backup_catalog.PlanError, ValueError) as error:
        sys.stdout.write("PLAN FAILED %s\n" % error)
        return 1
    for name, text in (("binlogs", binlogs), ("plan", plan)):
        with open(os.path.join(work, name), "w") as handle:
            handle.write(text)
    sys.stdout.write(plan)
    return 0
