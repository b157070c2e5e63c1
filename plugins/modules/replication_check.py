#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: replication_check
short_description: Check replication of a MariaDB StatefulSet by running SQL in its pods
version_added: 1.0.0
description:
  - Runs SQL in every pod of the StatefulSet through the Kubernetes exec API and reports, per
    pod, its role, server_id, read_only, replication threads, lag, last errors and GTID position.
  - The primary is the pod recorded in the ConfigMap C(<name>-topology) (ordinal 0 for a cluster
    deployed before the record existed). Fails when any other pod is writable, and names each pod
    whose GTID position holds transactions the primary never had (errant GTIDs).
  - Writes a sentinel row on the primary and waits until every replica has it.
  - A replica whose IO thread is only reconnecting (its primary just restarted) passes when the
    sentinel row reaches it, and is read again for the report; without the sentinel it fails.
  - Fails with a message naming each broken pod and the reason.
  - Fails when there is no pod to check, e.g. on a StatefulSet scaled to 0.
  - SQL runs as the pods' local admin account over the unix socket, so no password is used.
  - Changes nothing in the cluster's configuration and reports C(changed=false); the sentinel row
    lives in its own database C(mariadb_k8s), one row, replaced each run.
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
    details: In check mode no sentinel row is written; only the status is read.
options:
  replicas:
    description:
      - Number of pods to check, C(<name>-0) upwards; defaults to the StatefulSet's C(spec.replicas).
      - The primary is always checked, even when its ordinal is not below this number.
    type: int
  primary:
    description: The primary pod; defaults to the recorded one.
    type: str
  container:
    description: Container running the server.
    type: str
    default: mariadb
  sentinel:
    description: Write a sentinel row on the primary and wait for it on every replica.
    type: bool
    default: true
  timeout:
    description: Seconds the sentinel may take to reach every replica.
    type: float
    default: 30
  max_lag:
    description: Fail when a replica reports more seconds behind the primary than this.
    type: int
  tls:
    description:
      - Fail when a replica does not replicate over TLS with the primary's certificate verified, or a
        server presents no certificate or an expired one.
      - Reports the end of validity of the certificate each server presents (asked over a TLS session, so a
        renewed certificate counts only once the server has loaded it), and the days left.
    type: bool
    default: false
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Check the cluster in namespace mysql.
  mariadb_k8s.cluster.replication_check:
    namespace: mysql

- name: Check five pods with a kubeconfig, allowing 10 s of lag, without a sentinel write.
  mariadb_k8s.cluster.replication_check:
    namespace: shop
    name: orders
    replicas: 5
    max_lag: 10
    sentinel: false
    kubeconfig: ~/.kube/shop
"""

RETURN = r"""
primary:
  description: Name of the primary pod.
  returned: always
  type: str
  sample: mysql-0
pods:
  description: State of each pod, by pod name.
  returned: always
  type: dict
  sample:
    mysql-1:
      role: replica
      server_id: 101
      read_only: true
      version: 10.11.14-MariaDB-0+deb12u2
      io_running: "Yes"
      sql_running: "Yes"
      seconds_behind_primary: 0
      last_io_errno: 0
      last_io_error: ""
      last_sql_error: ""
      primary_host: mysql-0.mysql
      using_gtid: Slave_Pos
      gtid_current_pos: 0-100-12
      gtid_binlog_pos: 0-100-12
      gtid_slave_pos: 0-100-12
      gtid_binlog_state: 0-100-12
      gtid_io_pos: 0-100-12
      semi_sync: false
      tls: true
      tls_verified: true
      tls_expires: "2027-12-06 12:00 UTC"
      tls_days_left: 364
      errant_gtids: ""
      replicating: true
sentinel:
  description: The sentinel written on the primary and the seconds until each replica had it.
  returned: when I(sentinel=true) and not in check mode
  type: dict
  sample: {token: 5c8e0f7e-5d1b-4f0c-9a52-0c0a3e0f1b7a, seconds: {mysql-1: 0.12, mysql-2: 0.15}}
writable:
  description: The pods that accept writes (read_only off); only the primary in a healthy cluster.
  returned: always
  type: list
  elements: str
  sample: [mysql-0]
problems:
  description: One line per problem found, naming the pod.
  returned: always
  type: list
  elements: str
  sample: ["mysql-2: IO thread No: Got fatal error 1236 from master",
           "mysql-0: errant GTIDs 0-100-57, not in the history of the primary mysql-1"]
"""

import datetime
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import k8s_module, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.cluster import Cluster
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_client_api import ClientApi
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError


OPTIONS = dict(
    namespace=dict(type="str", required=True),
    name=dict(type="str", default="mysql"),
    replicas=dict(type="int"),
    primary=dict(type="str"),
    container=dict(type="str", default="mariadb"),
    sentinel=dict(type="bool", default=True),
    timeout=dict(type="float", default=30),
    max_lag=dict(type="int"),
    tls=dict(type="bool", default=False),
)


def _wait_for_sentinel(cluster, primary, replicas, timeout):
    token = str(uuid.uuid4())
    cluster.sql(primary, replication.sentinel_write_sql(token))
    started = time.monotonic()
    deadline = started + timeout

    def wait(pod):
        while True:
            try:
                if replication.sentinel_seen(cluster.sql(pod, replication.sentinel_read_sql()), token):
                    return pod, round(time.monotonic() - started, 3)
            except ExecError:
                pass  # the table may not have replicated yet
            if time.monotonic() >= deadline:
                return pod, None
            time.sleep(0.1)

    seconds = {}
    if replicas:
        with ThreadPoolExecutor(max_workers=min(8, len(replicas))) as pool:
            seconds = dict(pool.map(wait, replicas))
    return token, seconds


def _served_certificates(cluster, pods):
    """Set each pod's tls_expires and tls_days_left from the certificate its
    server presents; return one line per problem."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def read(pod):
        try:
            return pod, cluster.certificate_expiry(pod), None
        except (ExecError, ValueError) as exc:
            return pod, None, "%s: cannot read the certificate it serves (%s)" % (pod, exc)

    found = []
    with ThreadPoolExecutor(max_workers=min(8, len(pods))) as pool:
        for pod, expires, error in pool.map(read, sorted(pods)):
            if error:
                found.append(error)
                continue
            pods[pod]["tls_expires"] = expires.strftime("%Y-%m-%d %H:%M UTC") if expires else None
            pods[pod]["tls_days_left"] = (expires - now).days if expires else None
            problem = replication.certificate_problem(pod, expires, now)
            if problem:
                found.append(problem)
    return found


def execute_module(module, api):
    params = module.params
    cluster = Cluster(api, params["namespace"], params["name"], params["container"])
    try:
        count = params["replicas"] if params["replicas"] is not None else cluster.replicas()
        primary = params["primary"] or cluster.recorded_primary()
    except Exception as exc:  # kube_api.ApiError (its status and message say it all) or a connection error
        module.fail_json(msg="Cannot read StatefulSet %s or its record ConfigMap %s-topology in namespace %s: %s" % (
            params["name"], params["name"], params["namespace"], exc))
    if count < 1:
        what = ("replicas=%d" % count if params["replicas"] is not None
                else "StatefulSet %s in namespace %s has 0 replicas" % (params["name"], params["namespace"]))
        module.fail_json(msg=what + ": nothing to check")
    names = cluster.pods(count)
    if primary not in names:
        names.append(primary)
    replicas = [pod for pod in names if pod != primary]

    # A replica still reconnecting (its primary just restarted) is judged by
    # whether the sentinel row reaches it, and then read again for the report.
    sentinel = params["sentinel"] and not module.check_mode
    pods, found = {}, []

    def judge(read):
        for pod, state, error in read:
            if error:
                found.append(error)
                continue
            is_primary = pod == primary
            state["role"] = "primary" if is_primary else "replica"
            pods[pod] = state
            found.extend(replication.problems(pod, state, is_primary, cluster.host(primary), params["max_lag"], sentinel,
                                              params["tls"]))

    # The primary last: a replica read after it may already be ahead of its
    # snapshot, which would look like errant transactions.
    judge(cluster.read_states(replicas) + cluster.read_states([primary]))
    writable, more = replication.cluster_problems(pods, primary)
    found.extend(more)
    result = dict(changed=False, primary=primary, writable=writable, pods=pods, problems=found)
    if not found and sentinel:
        was_reconnecting = [pod for pod in replicas if replication.reconnecting(pods[pod])]
        try:
            token, seconds = _wait_for_sentinel(cluster, primary, replicas, params["timeout"])
        except ExecError as exc:
            found.append("%s: cannot write the sentinel row (%s)" % (primary, exc))
        else:
            result["sentinel"] = dict(token=token, seconds=seconds)
            for pod, elapsed in sorted(seconds.items()):
                if elapsed is None:
                    io_thread = " (IO thread %s%s)" % (pods[pod]["io_running"], replication.error_suffix(
                        pods[pod]["last_io_error"])) if pod in was_reconnecting else ""
                    found.append("%s: the sentinel row written on %s did not arrive within %ss%s" % (
                        pod, primary, params["timeout"], io_thread))
            judge(cluster.read_states([pod for pod in was_reconnecting if seconds[pod] is not None]))
    if params["tls"] and pods:
        found.extend(_served_certificates(cluster, pods))
    result["pods"] = dict(sorted(pods.items()))
    if found:
        module.fail_json(msg="Replication check failed: " + "; ".join(found), **result)
    module.exit_json(**result)


def main():
    k8s_module.run(OPTIONS, lambda module, api_client: execute_module(module, ClientApi(api_client)))


if __name__ == "__main__":
    main()
