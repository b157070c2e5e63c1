#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: job_wait
short_description: Wait until a Job succeeds or fails, and read its log
version_added: 1.1.0
description:
  - Watches the Job and returns as soon as it has succeeded or failed. The Job wait of
    M(kubernetes.core.k8s_info) ends only on the condition it names, so a failed Job would wait out the
    timeout; polling instead costs a module run per poll.
  - Returns the log of the Job's newest pod, so a failure can be told in the Job's own words.
  - Reads only; reports C(changed=false), also when the Job failed (see RV(succeeded)).
author:
  # No GitHub account to name: the schema's form for an untraceable author.
  - mariadb_k8s contributors (!UNKNOWN)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    description: Can run in check mode and return the result without changing anything.
    support: full
    details: Reads only, so it behaves the same in check mode.
options:
  namespace:
    description: Namespace of the Job.
    type: str
    required: true
  name:
    description: Name of the Job.
    type: str
    required: true
  container:
    description:
      - Containers of the Job's pod whose logs are returned, joined in this order (init containers first,
        so that the log of one that failed is told); a container that never started is left out.
      - The pod's only container when left out.
    type: list
    elements: str
  timeout:
    description: Seconds to wait before failing with the Job still running.
    type: float
    default: 900
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Wait up to an hour for the backup Job, then read its log.
  mariadb_k8s.cluster.job_wait:
    namespace: mysql
    name: mysql-backup-20261206120000
    container: backup
    timeout: 3600
  register: backup_job

- name: Fail with the Job's last lines when it failed.
  ansible.builtin.assert:
    that: backup_job.succeeded
    fail_msg: "{{ backup_job.log_lines[-10:] | join(' | ') }}"
"""

RETURN = r"""
succeeded:
  description: Whether the Job succeeded (false when it failed).
  returned: success
  type: bool
  sample: true
log_lines:
  description: The log of the Job's newest pod, one element per line; empty when it has no pod.
  returned: success
  type: list
  elements: str
  sample: ["BACKUP OK {\"id\": \"20261206120000\"}"]
seconds:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 12.4
"""

import time

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import job, k8s_module, watch

try:
    from kubernetes.client import BatchV1Api, CoreV1Api
    from kubernetes.client.exceptions import ApiException
except ImportError:
    pass

WATCH_SECONDS = 5

OPTIONS = dict(
    namespace=dict(type="str", required=True),
    name=dict(type="str", required=True),
    container=dict(type="list", elements="str"),
    timeout=dict(type="float", default=900),
)


class Cluster:
    """The reads the wait needs, as plain dicts."""

    def __init__(self, api_client, namespace, name):
        self._api = api_client
        self._batch = BatchV1Api(api_client)
        self._core = CoreV1Api(api_client)
        self._namespace = namespace
        self._name = name

    def read(self):
        """The Job, and the resource version to watch it from."""
        jobs = self._batch.list_namespaced_job(self._namespace, field_selector="metadata.name=" + self._name)
        found = self._api.sanitize_for_serialization(jobs.items)
        return (found[0] if found else None), jobs.metadata.resource_version

    def next_job_event(self, resource_version, seconds):
        """Return at the first change of the Job after resource_version, or after seconds."""
        watch.next_event(self._batch.list_namespaced_job, self._namespace, resource_version, seconds,
                         field_selector="metadata.name=" + self._name)

    def log(self, containers):
        """The log lines of the Job's newest pod, of CONTAINERS in order
        (or of its only one); [] when it has none."""
        pods = self._core.list_namespaced_pod(self._namespace, label_selector="batch.kubernetes.io/job-name=" + self._name)
        found = self._api.sanitize_for_serialization(pods.items)
        pod = job.newest_pod(found)
        if pod is None:
            return []
        if not containers:
            return self._core.read_namespaced_pod_log(pod, self._namespace).splitlines()
        started = job.started_containers([p for p in found if p["metadata"]["name"] == pod][0])
        lines = []
        for container in containers:
            if container in started:
                lines += self._core.read_namespaced_pod_log(pod, self._namespace, container=container).splitlines()
        return lines


def wait(cluster, timeout):
    """Return (outcome, error) once the Job ended (outcome True or False),
    or timeout passed (outcome None, error the last read's failure if any)."""
    seen = dict(outcome=None)

    def read():
        found, resource_version = cluster.read()
        if found is None:
            raise LookupError("not found")
        seen["outcome"] = job.outcome(found)
        return seen["outcome"] is not None, resource_version

    error = watch.until(read, cluster.next_job_event, timeout, WATCH_SECONDS)
    return seen["outcome"], error


def execute_module(module, cluster):
    params = module.params
    started = time.monotonic()
    try:
        ended, error = wait(cluster, params["timeout"])
    except LookupError:
        module.fail_json(msg="Job %s not found in namespace %s." % (params["name"], params["namespace"]), seconds=0.0)
    seconds = round(time.monotonic() - started, 3)
    if ended is None:
        module.fail_json(msg="Job %s still running after %ss%s." % (params["name"], params["timeout"],
                                                                    " (%s)" % error if error else ""), seconds=seconds)
    try:
        lines = cluster.log(params["container"])
    except ApiException as exc:
        lines = ["(the Job's log could not be read: %s %s)" % (exc.status, exc.reason)]
    module.exit_json(changed=False, succeeded=ended, log_lines=lines, seconds=seconds)


def main():
    k8s_module.run(OPTIONS, lambda module, api_client: execute_module(
        module, Cluster(api_client, module.params["namespace"], module.params["name"])))


if __name__ == "__main__":
    main()
