#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: move_primary
short_description: Move the primary of a MariaDB StatefulSet to another pod (switchover or failover)
version_added: 1.1.0
description:
  - C(mode=switchover), with the primary alive. The primary is made read-only and its client sessions
    are closed, the target applies every transaction up to the primary's final GTID position, is
    promoted, recorded as the primary in the ConfigMap C(<name>-topology) and selected by the write
    Service C(<name>-primary); then every other pod, the old primary included, replicates from it.
    No acknowledged write is lost; every write acknowledged before the primary turned read-only is in
    that final position, and later ones fail.
  - One deadline (I(timeout)) covers the steps up to the move of the write Service. When a step
    fails or the target does not catch up in time, the target goes back to replicating, the old
    primary is made writable again, and the module fails saying which step failed and why. The
    cluster is never left without a writable primary by this module.
  - C(mode=failover), with the primary gone (pod deleted for good, node lost, volume lost). Refuses
    while the recorded primary still answers SQL, unless I(force). Each reachable replica stops
    fetching from the old primary and applies its relay log; the replica whose GTID position covers
    every other one is promoted (with semi-synchronous replication it holds every acknowledged
    write); the others replicate from it. The old primary's pod, when it exists but is not Ready, is
    deleted, so that it starts again through its init containers as a replica (cloned when its
    volume is empty). A former primary that comes back with transactions the new primary never had
    is refused by it and stays out of service until rebuilt.
  - SQL and the role changes run through the exec API as the pods' local admin over the unix
    socket (the pod script C(role.sh)); no password is used.
  - Every pod is annotated with the new primary, which makes the kubelet refresh the record mounted
    in it at once.
author:
  # No GitHub account to name: the schema's form for an untraceable author.
  - mariadb_k8s contributors (!UNKNOWN)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - mariadb_k8s.cluster.statefulset
attributes:
  check_mode:
    description: Can run in check mode and return the result without changing anything.
    support: full
    details: In check mode the target is validated and the chosen pod reported; nothing is changed.
options:
  mode:
    description: C(switchover) (planned, the primary is alive) or C(failover) (the primary is gone).
    type: str
    choices: [switchover, failover]
    required: true
  target:
    description:
      - The pod to promote. Required for a switchover; it must be a healthy replica of the primary,
        at most I(max_lag) seconds behind.
      - For a failover, optional; it must then hold every transaction the other replicas hold.
    type: str
  force:
    description: Fail over even though the recorded primary still answers; it is fenced first (read-only).
    type: bool
    default: false
  timeout:
    description: Seconds for the whole move, from fencing the primary to moving the write Service.
    type: float
    default: 30
  max_lag:
    description: A switchover target more seconds behind the primary than this is refused.
    type: int
    default: 5
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Switch the primary over to mysql-2.
  mariadb_k8s.cluster.move_primary:
    namespace: mysql
    mode: switchover
    target: mysql-2

- name: Promote the most advanced replica; the primary's node is lost.
  mariadb_k8s.cluster.move_primary:
    namespace: mysql
    mode: failover
"""

RETURN = r"""
previous:
  description: The primary before the move.
  returned: always
  type: str
  sample: mysql-0
primary:
  description: The primary after the move (the previous one when nothing changed).
  returned: always
  type: str
  sample: mysql-2
epoch:
  description: >-
    The record's epoch after the move (key C(epoch) of C(<name>-topology), 0 before any move). Every
    move increments it by compare-and-swap: a move started from an older record is refused, and
    its promoted pod replicates from the primary the other move recorded.
  returned: always
  type: int
  sample: 3
positions:
  description: GTID position of each pod considered, when it was read.
  returned: always
  type: dict
  sample: {mysql-1: 0-100-812, mysql-2: 0-100-812}
steps:
  description: Each step taken, with the seconds since the module started.
  returned: always
  type: list
  elements: str
  sample: ["0.41 fenced mysql-0 at 0-100-812", "0.52 mysql-2 applied 0-100-812", "0.70 promoted mysql-2"]
restarted:
  description: Pods deleted so that they start again as replicas (the old primary's pod when it was not Ready).
  returned: always
  type: list
  elements: str
  sample: [mysql-0]
problems:
  description: Pods that could not be pointed at the new primary after the move (they need a look).
  returned: always
  type: list
  elements: str
"""

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import k8s_module
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import Cluster
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_client_api import ClientApi
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.primary_move import Move

OPTIONS = dict(
    namespace=dict(type="str", required=True),
    name=dict(type="str", default="mysql"),
    mode=dict(type="str", required=True, choices=["switchover", "failover"]),
    target=dict(type="str"),
    force=dict(type="bool", default=False),
    timeout=dict(type="float", default=30),
    max_lag=dict(type="int", default=5),
)


def execute_module(module, api):
    params = module.params
    cluster = Cluster(api, params["namespace"], params["name"])
    try:
        move = Move(module, cluster)
    except Exception as exc:  # kube_api.ApiError (its status and message say it all) or a connection error
        module.fail_json(msg="Cannot read StatefulSet %s or its record ConfigMap %s-topology in namespace %s: %s" % (
            params["name"], params["name"], params["namespace"], exc))
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout (primary_timeout) must be a positive number of seconds, got %s" % params["timeout"],
                         **move.result)
    if params["max_lag"] < 0:
        module.fail_json(msg="max_lag (primary_max_lag) must be 0 or more seconds, got %s" % params["max_lag"], **move.result)
    target = params["target"]
    if target is not None and target not in move.pods:
        module.fail_json(msg="target (-e primary) must be a pod of the cluster, %s, got '%s'" % (
            ", ".join(move.pods), target), **move.result)
    if params["mode"] == "switchover":
        if target is None:
            module.fail_json(msg="target (-e primary) is required for a switchover", **move.result)
        move.switchover(target)
    move.failover(target)


def main():
    k8s_module.run(OPTIONS, lambda module, api_client: execute_module(module, ClientApi(api_client)))


if __name__ == "__main__":
    main()
