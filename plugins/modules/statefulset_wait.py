#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: statefulset_wait
short_description: Wait until a StatefulSet's rollout is complete, partition included
version_added: 1.0.0
description:
  - Waits until the StatefulSet controller has seen the current spec, every ordinal below
    C(spec.replicas) has a Ready pod, and the pods at or above the rolling update partition run
    the update revision.
  - Unlike the StatefulSet wait of M(kubernetes.core.k8s), it completes under a partition.
  - Watches the pods, so it returns as soon as the last pod is Ready instead of at the next poll.
  - Fails at once, naming the pod, the error and the playbook that fixes it, when a pod's readiness probe
    reports a replication error that no wait ends (the replica's position gone from the primary's binary
    logs, error 1236, or its SQL thread stopped on an error), instead of waiting out I(timeout).
  - Reads only; reports C(changed=false).
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
    details: Reads only, so it behaves the same in check mode.
options:
  replicas:
    description:
      - Wait only for the pods with an ordinal below this, e.g. after rebuilding one replica
        while a later one is still broken. Defaults to the StatefulSet's C(spec.replicas).
    type: int
  container:
    description: Container whose image is reported for each pod.
    type: str
    default: mariadb
  timeout:
    description: Seconds to wait before failing with the pods still pending.
    type: float
    default: 900
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Wait for the rollout of StatefulSet mysql, for up to 15 minutes.
  mariadb_k8s.cluster.statefulset_wait:
    namespace: mysql

- name: Wait at most 2 minutes for StatefulSet orders with a kubeconfig.
  mariadb_k8s.cluster.statefulset_wait:
    namespace: shop
    name: orders
    timeout: 120
    kubeconfig: ~/.kube/shop

- name: Wait for mysql-0 to mysql-2 only.
  mariadb_k8s.cluster.statefulset_wait:
    namespace: mysql
    replicas: 3
"""

RETURN = r"""
images:
  description: Image of I(container) in each pod, by pod name.
  returned: success
  type: dict
  sample: {mysql-0: docker.io/library/mariadb:10.11, mysql-1: docker.io/library/mariadb:11.8}
outdated:
  description: Pods still on an older pod template, below the rolling update partition.
  returned: success
  type: list
  elements: str
  sample: [mysql-0, mysql-1]
seconds:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 12.4
pending:
  description: One line per pod the rollout still waits for, naming the pod and why; empty on success.
  returned: always
  type: list
  elements: str
  sample: ["mysql-2: not Ready"]
stuck:
  description: >-
    Pods whose readiness probe reports a replication error that no wait ends (the IO thread's position
    gone from the primary's binary logs, error 1236, or the SQL thread stopped on an error), with the
    error; the wait fails at once when there is one.
  returned: when a pod is stuck
  type: dict
  sample: {mysql-3: "replication IO thread No with error 1236: Got fatal error 1236 from master ..."}
"""

import time

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import k8s_module, rollout, watch

try:
    from kubernetes.client import AppsV1Api, CoreV1Api
    from kubernetes.client.exceptions import ApiException
except ImportError:
    pass

# The StatefulSet's own status (observedGeneration, updateRevision) changes
# without a pod event, so no watch lasts longer than this.
WATCH_SECONDS = 2


OPTIONS = dict(
    namespace=dict(type="str", required=True),
    name=dict(type="str", default="mysql"),
    replicas=dict(type="int"),
    container=dict(type="str", default="mariadb"),
    timeout=dict(type="float", default=900),
)


class Cluster:
    """The reads the wait needs, as plain dicts."""

    def __init__(self, api_client, namespace, name):
        self._api = api_client
        self._apps = AppsV1Api(api_client)
        self._core = CoreV1Api(api_client)
        self._namespace = namespace
        self._name = name

    def read(self):
        """The StatefulSet, its pods, and the resource version to watch the pods from."""
        try:
            sts = self._apps.read_namespaced_stateful_set(self._name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise LookupError("not found")
            raise
        sts = self._api.sanitize_for_serialization(sts)
        pods = self._core.list_namespaced_pod(self._namespace, label_selector=rollout.label_selector(sts))
        return sts, self._api.sanitize_for_serialization(pods.items), pods.metadata.resource_version

    def probe_failures(self):
        """The namespace's events of failed pod probes, as plain dicts."""
        events = self._core.list_namespaced_event(self._namespace, field_selector="involvedObject.kind=Pod,reason=Unhealthy")
        return self._api.sanitize_for_serialization(events.items)

    def next_pod_event(self, statefulset, resource_version, seconds):
        """Return at the first pod change after resource_version, or after seconds."""
        watch.next_event(self._core.list_namespaced_pod, self._namespace, resource_version, seconds,
                         label_selector=rollout.label_selector(statefulset))


def wait(cluster, timeout, replicas=None):
    """Return (statefulset, pods, pending, stuck, error) once nothing is pending,
    a pod is stuck on a replication error no wait ends, or timeout passed."""
    seen = dict(sts=None, pods=[], waiting=[], stuck={})

    def read():
        sts, pods, resource_version = cluster.read()
        waiting = rollout.pending(pods, sts, replicas)
        stuck = rollout.stuck(pods, cluster.probe_failures()) if waiting else {}
        seen.update(sts=sts, pods=pods, waiting=waiting, stuck=stuck)
        return not waiting or bool(stuck), resource_version

    error = watch.until(read, lambda version, seconds: cluster.next_pod_event(seen["sts"], version, seconds),
                        timeout, WATCH_SECONDS)
    return seen["sts"], seen["pods"], seen["waiting"], seen["stuck"], error


def execute_module(module, cluster):
    params = module.params
    started = time.monotonic()
    try:
        sts, pods, waiting, stuck, error = wait(cluster, params["timeout"], params["replicas"])
    except LookupError:
        module.fail_json(msg="StatefulSet %s not found in namespace %s." % (params["name"], params["namespace"]),
                         pending=[], seconds=0.0)
    seconds = round(time.monotonic() - started, 3)
    if stuck:
        module.fail_json(msg="StatefulSet %s cannot roll out: %s." % (params["name"], "; ".join(
            "%s is not Ready and will not be by waiting (%s): rebuild.yml -e pod=%s re-clones it" % (pod, reason, pod)
            for pod, reason in stuck.items())), pending=waiting, stuck=stuck, seconds=seconds)
    if error is not None or waiting:
        reasons = waiting + ([error] if error else [])
        module.fail_json(msg="StatefulSet %s not rolled out after %ss: %s" % (params["name"], params["timeout"], "; ".join(reasons)),
                         pending=waiting, seconds=seconds)
    module.exit_json(changed=False, images=rollout.images(pods, params["container"]),
                     outdated=rollout.outdated(pods, sts), pending=[], seconds=seconds)


def main():
    k8s_module.run(OPTIONS, lambda module, api_client: execute_module(
        module, Cluster(api_client, module.params["namespace"], module.params["name"])))


if __name__ == "__main__":
    main()
