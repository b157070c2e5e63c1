"""The plan of a backup verification (backup_verification.py, the Job's plan
step): the newest complete backup of the cluster's timeline at or before the
GTID its source's checksums were read at, and the binary logs up to exactly
that GTID, as the files verify-backup.sh and restore.sh read."""
import shlex

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import backup_catalog, backup_verification
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.backup_catalog import PlanError
from test_backup_catalog import A, B, L2, L3, L4, MANIFESTS, SHA, T0, TL, manifest, path, standard_lines, store


def plan(gtid, **changes):
    return backup_catalog.verification_plan(store(**changes), TL, gtid)


@pytest.mark.parametrize("gtid,chosen,logs", [
    ("0-101-10", A, []),  # exactly at backup A
    ("0-101-15", A, [L2]),  # inside L2: restore.sh stops in it
    ("0-101-29", A, [L2, L3]),  # B (at 30) is past the position
    ("0-101-30", B, []),
    ("0-101-40", B, [L4]),
])
def test_the_newest_backup_at_or_before_the_position_and_the_logs_up_to_it(gtid, chosen, logs):
    result = plan(gtid)
    assert result["backup"]["id"] == chosen and result["stop_gtid"] == gtid
    assert result["binlogs"] == [{"object": path(L), "sha256": SHA, "last_gtid": L["last_gtid"]} for L in logs]


def test_a_damaged_newest_backup_is_passed_over():
    result = plan("0-101-35", missing=["backups/%s/backup.mbstream" % B])
    assert result["backup"]["id"] == A and [b["object"] for b in result["binlogs"]] == [path(L) for L in (L2, L3, L4)]


def test_another_timelines_backups_are_not_verified():
    other = manifest("20261201T120000Z", 35, T0 + 7200, timeline="zz9otherline")
    result = backup_catalog.verification_plan(store(manifests=MANIFESTS + (other,)), TL, "0-101-40")
    assert result["backup"]["id"] == B


@pytest.mark.parametrize("gtid,changes,message", [
    ("0-101-5", {}, "no complete backup of timeline %s at or before GTID 0-101-5 (the oldest is at 0-101-10)" % TL),
    ("0-101-5", {"manifests": ()}, "no complete backup of timeline %s at or before GTID 0-101-5" % TL),
    ("0-101-25", {"missing": [L2["object"]]}, "lacks the binary logs with the transactions after sequence number 10 and before 21"),
    ("0-101-45", {}, "rolls backup %s forward up to sequence number 40, not to GTID 0-101-45" % B),
])
def test_what_cannot_be_verified_is_said(gtid, changes, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(gtid, **changes)


def test_the_files_for_verify_backup_sh_and_restore_sh():
    source = ["GTID 0-101-25", "TABLE app.t 3 1 2", "CHECKSUMS OK"]
    text, binlogs = backup_verification.plan_files(standard_lines(), source, TL)
    values = dict(line.split("=", 1) for line in text.splitlines())
    values = {name: shlex.split(value)[0] if value else "" for name, value in values.items()}
    assert values == {
        "VERIFY_BACKUP_ID": A, "VERIFY_MANIFEST": "%s/backups/%s/manifest.json" % (TL, A),
        "RESTORE_BACKUP": "%s/backups/%s/backup.mbstream" % (TL, A), "RESTORE_SIZE": "52428800",
        "RESTORE_SHA256": SHA, "RESTORE_GTID": "0-101-10", "RESTORE_STOP_GTID": "0-101-25"}
    assert binlogs == "".join("%s %s %s\n" % (path(L), SHA, L["last_gtid"]) for L in (L2, L3))


def test_an_empty_cluster_verifies_an_empty_backup():
    empty = manifest(A, 0, T0 + 60)
    text, binlogs = backup_verification.plan_files(standard_lines(manifests=(empty,), binlogs=()), ["GTID ", "CHECKSUMS OK"], TL)
    assert "RESTORE_GTID=''" in text and "RESTORE_STOP_GTID=''" in text and binlogs == ""


def test_main_writes_the_files_or_says_why_not(tmp_path, capsys):
    (tmp_path / "catalog").write_text("\n".join(standard_lines()) + "\n")
    (tmp_path / "timeline").write_text(TL + "\n")
    (tmp_path / "source").write_text("GTID 0-101-40\nCHECKSUMS OK\n")
    assert backup_verification.main(str(tmp_path)) == 0
    assert "VERIFY_BACKUP_ID=%s" % B in (tmp_path / "plan").read_text()
    assert (tmp_path / "binlogs").read_text() == "%s %s %s\n" % (path(L4), SHA, L4["last_gtid"])
    (tmp_path / "source").write_text("CHECKSUMS OK\n")
    assert backup_verification.main(str(tmp_path)) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "PLAN FAILED the source's checksums hold no GTID line"
    (tmp_path / "source").write_text("GTID 0-101-40,5-101-2\nCHECKSUMS OK\n")
    assert backup_verification.main(str(tmp_path)) == 1
    assert "spans several GTID domains" in capsys.readouterr().out.splitlines()[-1]

