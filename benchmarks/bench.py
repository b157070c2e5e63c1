"""What every benchmark step shares: the namespace, playbook runs, client
pods, commit rates, filling data, and Bench, which holds the measurements and
writes a step's report."""
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import time

from kubernetes import client, config

from tests.harness import ROOT, run_playbook, sql, start_client, wait_until

NS = "bench"
# The autopilot (on by default) only where a step asks for it: the other
# steps measure what the playbooks do, as before it existed.
BASE = {"mariadb_namespace": NS, "version": "10.11", "mariadb_autopilot": False}
ROW_BYTES = 2048
# profile_tasks prints each task's time in its recap: "<role> : <task> ---- 1.23s".
PROFILED = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "200"}
PROFILE_LINE = re.compile(r"^mariadb_k8s\.cluster\.(\w+) : (.+?) -+ (\d+\.\d+)s$", re.M)


def log(message):
    print("[benchmark %s] %s" % (time.strftime("%H:%M:%S"), message), flush=True)


def kubectl(*args, **kwargs):
    binary = shutil.which("kubectl") or next(iter(sorted(
        p for p in (os.path.join("/var/cache/mariadb-k8s", d, "bin", "kubectl")
                    for d in os.listdir("/var/cache/mariadb-k8s") if d.startswith("kubernetes-"))
        if os.path.exists(p))), None)
    return subprocess.run([binary, "-n", NS] + list(args), check=True, capture_output=True, text=True, **kwargs)


def timed(function, *args, **kwargs):
    started = time.monotonic()
    function(*args, **kwargs)
    return time.monotonic() - started


def playbook(name, **extra):
    return run_playbook(name, dict(BASE, **extra)).check()


def commits_per_second(runner, table, rows):
    """Single-row autocommit inserts into a new table through mysql-primary, one connection."""
    sql(runner, "mysql-primary", "CREATE TABLE %s (id INT PRIMARY KEY)" % table)
    seconds = float(runner.run("client", ["bash", "-c", (
        "start=$(date +%s.%N); seq {rows} | sed 's/.*/INSERT INTO {table} VALUES (&);/' "
        "| mariadb --defaults-file=/tmp/client.cnf -h mysql-primary; "
        "awk -v s=$start -v e=$(date +%s.%N) 'BEGIN {{ print e - s }}'").format(rows=rows, table=table)], timeout=300))
    return rows / seconds


def fill(runner, rows, target_mib):
    """Grow fill.t (created when rows is 0) to target_mib; returns its row count."""
    if rows == 0:
        sql(runner, "mysql-primary", "CREATE DATABASE fill; CREATE TABLE fill.t (id INT PRIMARY KEY, pad VARCHAR(%d))" % ROW_BYTES)
    target = target_mib * 1024 * 1024 // ROW_BYTES
    log("filling to %d MiB" % target_mib)
    while rows < target:
        upto = min(target, rows + 20000)
        sql(runner, "mysql-primary", "INSERT INTO fill.t SELECT seq, REPEAT(MD5(seq), %d) FROM fill.seq_%d_to_%d"
            % (ROW_BYTES // 32, rows + 1, upto))
        rows = upto
    return rows


def profiled(name, **extra):
    """Run a playbook; return its wall time and {"role: task": seconds}."""
    result = run_playbook(name, dict(BASE, **extra), env=PROFILED).check()
    return result.seconds, {"%s: %s" % (role, task): float(seconds) for role, task, seconds in PROFILE_LINE.findall(result.output)}


class Bench:
    """The cluster the steps measure on, and what they measured."""

    def __init__(self, runs):
        config.load_kube_config()
        self.api = client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.runs = runs
        self.results = {}
        self.profiles = {}
        self.runner = None

    def fresh(self):
        if self.runner:
            self.core.delete_namespaced_pod("client", NS, grace_period_seconds=0)
            wait_until("client gone", lambda: not self.core.list_namespaced_pod(NS, field_selector="metadata.name=client").items)
            self.runner = None
        playbook("teardown.yml", delete_data=True)

    def client(self):
        if not self.runner:
            self.runner = start_client(self.core, self.api, NS)
        return self.runner

    def record(self, name, samples, unit="s"):
        self.results[name] = (samples, unit)
        log("%s: median %.2f%s of %s" % (name, statistics.median(samples), unit, ["%.2f" % s for s in samples]))

    def record_profiled(self, name, runs):
        """Record (seconds, profile) runs; keep the profile of the median run."""
        runs = sorted(runs)
        self.record(name, [seconds for seconds, _ in runs])
        self.profiles[name] = runs[len(runs) // 2]

    def add(self, name, sample, unit="s"):
        """One more sample of name; record() logs them all at the end."""
        self.results.setdefault(name, ([], unit))[0].append(sample)

    def measurement_row(self, name):
        """The report's table row of a measurement: median, min, max, runs."""
        samples, unit = self.results[name]
        return "| %s | %.2f %s | %.2f | %.2f | %d |" % (name, statistics.median(samples), unit,
                                                        min(samples), max(samples), len(samples))

    def median(self, name):
        return statistics.median(self.results[name][0])

    @staticmethod
    def teardown(namespace):
        playbook("teardown.yml", mariadb_namespace=namespace, delete_data=True)

    def ensure_namespace(self, namespace):
        if not self.core.list_namespace(field_selector="metadata.name=" + namespace).items:
            self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    def clone_seconds(self, pod):
        return float(re.search(r"clone complete in ([\d.]+)s", self.core.read_namespaced_pod_log(pod, NS, container="clone")).group(1))

    def write_step(self, step, title, intro, names, ratios):
        """docs/benchmarks-<step>.md: a step run on its own (--steps <step>)."""
        md = ["# Benchmarks: " + title, "",
              "Generated by `make benchmark` (benchmarks, step `%s`) on %s: %s, %d CPUs, %s. "
              "Median of %d runs; min and max beside it." % (
                  step, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), platform.node(),
                  os.cpu_count(), platform.platform(), self.runs), ""] + intro + [
              "", "| measurement | median | min | max | runs |", "|---|---|---|---|---|"]
        md += [self.measurement_row(name) for name in names]
        md += ["", "| ratio | measured | target |", "|---|---|---|"]
        md += ["| %s | %.2f | %s |" % row for row in ratios]
        with open(os.path.join(ROOT, "docs", "benchmarks-%s.md" % step), "w") as handle:
            handle.write("\n".join(md) + "\n")
