#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: backup_catalog
short_description: Read what an object store holds for a MariaDB cluster and plan a restore
version_added: 1.0.0
description:
  - Parses the listing that the pods' C(catalog.sh) prints, run by a Job of the backup role since
    only the cluster's pods may reach the object store. It holds the backup manifests, the archived
    binary logs and each timeline's archived-until marker.
  - Reports every backup with its state (complete, damaged when its object is missing or not the
    size its manifest records, incomplete without a manifest) and how far the archived binary logs
    can roll it forward, naming the first gap in the archive, or the divergence (two histories after
    a failover that lost archived transactions) it cannot cross.
  - With O(backup) or O(point_in_time), plans a restore; fails with a message naming the variable
    when the backup is missing or damaged, the time is outside what the archive covers or lies past
    a gap or a divergence, or the backup's server version is newer than O(server_version).
  - Runs on the controller, contacts nothing and reports C(changed=false).
author:
  # No GitHub account to name: the schema's form for an untraceable author.
  - mariadb_k8s contributors (!UNKNOWN)
attributes:
  check_mode:
    description: Can run in check mode and return the result without changing anything.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
options:
  lines:
    description: The lines C(catalog.sh) printed.
    type: list
    elements: str
    required: true
  backup:
    description:
      - The id of the backup to restore, C(YYYYMMDDTHHMMSSZ-TIMELINE) (C(YYYYMMDDTHHMMSSZ) for a backup
        of an earlier release).
    type: str
    default: ""
  timeline:
    description:
      - Plan from the backups and binary logs of this timeline only, one cluster's identity (the third
        part of C(restore.yml -e source=NAMESPACE/NAME/TIMELINE)).
      - Without it, a restore by O(point_in_time) alone is refused when the store holds the backups of
        several timelines (two clusters sharing a store path, or a cluster and the one it was restored from).
    type: str
    default: ""
  cluster_timeline:
    description: The listing cluster's own timeline; RV(summary) marks the backups of every other one.
    type: str
    default: ""
  point_in_time:
    description:
      - Roll the backup forward through the archived binary logs up to this UTC time,
        C(YYYY-MM-DD HH:MM:SS); transactions from this second on are not applied.
      - Without O(backup), the newest complete backup that finished before it is used.
    type: str
    default: ""
  server_version:
    description: The version the restored cluster runs, C(10.11) or C(11.8); must not be older than the backup's.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Plan a point-in-time restore.
  mariadb_k8s.cluster.backup_catalog:
    lines: "{{ catalog_log.log_lines }}"
    point_in_time: "2026-12-01 10:30:00"
    server_version: "11.8"
  register: restore_plan
"""

RETURN = r"""
backups:
  description: Every backup, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 20261201T102000Z-k3x9q2m1a0bc
      timeline: k3x9q2m1a0bc
      state: complete
      gtid: 0-101-1234
      server_version: 10.11.18
      donor: mysql-2
      finished_utc: "2026-12-01 10:20:14"
      size: 52428800
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      epoch: 3
      pitr_until_utc: "2026-12-01 10:41:00"
      gap: null
      diverged: null
summary:
  description: One line per backup of RV(backups), for people.
  returned: always
  type: list
  elements: str
plan:
  description: The restore to run, when O(backup) or O(point_in_time) is given.
  returned: when O(backup) or O(point_in_time) is given
  type: dict
  contains:
    backup:
      description: The backup's manifest and state, as in RV(backups).
      type: dict
    binlogs:
      description: The archived binary logs to apply, in order, with C(object), C(sha256), C(last_gtid), C(last_time).
      type: list
      elements: dict
    stop:
      description: The UTC time the roll-forward stops at, empty without O(point_in_time).
      type: str
    stop_epoch:
      description: The same time in seconds since the epoch, 0 without O(point_in_time).
      type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import backup_catalog


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lines=dict(type="list", elements="str", required=True),
            backup=dict(type="str", default=""),
            point_in_time=dict(type="str", default=""),
            server_version=dict(type="str", default=""),
            timeline=dict(type="str", default=""),
            cluster_timeline=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        catalog = backup_catalog.parse(params["lines"])
        report = backup_catalog.report(catalog)
    except (ValueError, KeyError, TypeError) as error:
        module.fail_json(msg="the object store's listing could not be read: %s" % error)
    result = dict(changed=False, backups=report, summary=backup_catalog.summary(report, params["cluster_timeline"]))
    if params["backup"] or params["point_in_time"]:
        try:
            result["plan"] = backup_catalog.plan(catalog, params["backup"], params["point_in_time"],
                                                 params["server_version"], params["timeline"])
        except backup_catalog.PlanError as error:
            module.fail_json(msg=str(error), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
