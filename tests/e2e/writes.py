"""A concurrent writer and the check that every write it saw acknowledged
survived, shared by the fault and the primary-move tests."""
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import ExecError

from tests.harness import run_playbook, sql, wait_until

# A fault test means something only over this many acknowledged writes: the
# writer has made them before the test's fault, however loaded the machine.
ENOUGH = 21


class Writer:
    """Inserts rows into app.events through mysql-primary from the client pod,
    a new connection every 100 ms, recording each insert the primary
    acknowledged (the client exited 0). An insert gets 10 s: one in flight
    when a partition starts would otherwise wait for ever for an answer
    that never comes. Each insert costs about 18 ms of CPU
    (a client process and a TLS handshake): every 50 ms, the writers of the
    suite took an eighth of its two cores."""

    def __init__(self, runner, scenario):
        self.runner, self.scenario = runner, scenario

    def __enter__(self):
        self.runner.run("client", ["bash", "-c", (
            "rm -f /tmp/stop /tmp/done-{s} /tmp/acked-{s}; setsid bash -c 'i=0; "
            "while [ ! -f /tmp/stop ]; do i=$((i+1)); "
            "timeout 10 mariadb --defaults-file=/tmp/client.cnf -h mysql-primary --connect-timeout=2 "
            "-e \"INSERT INTO app.events VALUES (\\\"{s}\\\", $i)\" 2>/dev/null && echo $i >> /tmp/acked-{s}; "
            "sleep 0.1; done; touch /tmp/done-{s}' </dev/null >/dev/null 2>&1 &"
        ).format(s=self.scenario)])
        wait_until("%d writes acknowledged" % ENOUGH, lambda: len(self.acknowledged()) >= ENOUGH, timeout=120, interval=0.5)
        return self

    def __exit__(self, *exc):
        self.runner.run("client", ["touch", "/tmp/stop"])
        wait_until("writer stopped", lambda: self._done(), timeout=30, interval=0.5)

    def _done(self):
        return self.runner.run("client", ["bash", "-c", "test -f /tmp/done-%s && echo yes || true" % self.scenario]).strip()

    def acknowledged(self):
        return {int(x) for x in self.runner.run("client", ["bash", "-c", "cat /tmp/acked-%s 2>/dev/null || true"
                                                            % self.scenario]).split()}


class WritableChecker:
    """In the client pod: every 100 ms (plus the probes' time, at most 1 s),
    each pod's read_only asked over TCP on a new connection, the pods in
    parallel. A sample is its start time (the client pod's clock, the
    node's) and, per pod, "0" (writable), "1" (read-only) or "-" (no
    answer): an answer is counted in the sample that asked, however late it
    came, so a server that answers a connection that waited on it while
    its pod was frozen counts as writable then."""

    SCRIPT = r"""
while [ ! -f "$0.stop" ]; do
  t=$(date +%s.%N)
  for pod in "$@"; do
    (mariadb --defaults-file=/tmp/client.cnf -h "$pod.mysql" --connect-timeout=1 -N -e 'SELECT @@global.read_only' \
      2>/dev/null || echo -) > "$0.$pod" &
  done
  wait
  line=$t
  for pod in "$@"; do line="$line $(head -c 1 "$0.$pod")"; done
  echo "$line" >> "$0.samples"
  sleep 0.1
done
"""

    def __init__(self, runner, name, pods):
        self.runner, self.path, self.pods = runner, "/tmp/checker-" + name, list(pods)

    def start(self):
        self.runner.run("client", ["bash", "-c", 'rm -f "$1".*; printf "%s" "$0" > "$1"; setsid bash "$@" '
                                   '</dev/null >/dev/null 2>&1 &', self.SCRIPT, self.path] + self.pods)
        return self

    def stop(self):
        self.runner.run("client", ["touch", self.path + ".stop"])

    def samples(self, start=0.0, end=float("inf")):
        """[(time, {pod: "0" | "1" | "-"})] of the samples that started between start and end."""
        found = []
        for line in self.runner.run("client", ["bash", "-c", 'cat "$0.samples" 2>/dev/null || true', self.path]).splitlines():
            fields = line.split()
            if len(fields) == 1 + len(self.pods) and start <= float(fields[0]) <= end:
                found.append((float(fields[0]), dict(zip(self.pods, fields[1:]))))
        return found

    def two_writable(self, start=0.0, end=float("inf")):
        """The samples between start and end in which two pods answered writable."""
        return [(at, answers) for at, answers in self.samples(start, end) if list(answers.values()).count("0") > 1]


def create_events_table(runner):
    sql(runner, "mysql-primary", "CREATE DATABASE app; CREATE TABLE app.events "
        "(scenario VARCHAR(40), seq INT, PRIMARY KEY (scenario, seq))")


def rows(runner, pod, scenario):
    return {int(x) for x in sql(runner, pod + ".mysql",
                                "SELECT seq FROM app.events WHERE scenario = '%s'" % scenario).split()}


def checksum(runner, pod):
    return sql(runner, pod + ".mysql", "CHECKSUM TABLE app.events").split()[-1]


def caught_up(runner, primary, pods):
    """Every pod holds the primary's rows. A pod that does not answer (a
    failover may delete an old primary's pod that was restarting, and its
    name resolves again only once the StatefulSet made it again) has not."""
    try:
        expected = checksum(runner, primary)
        return all(checksum(runner, p) == expected for p in pods)
    except ExecError:
        return False


def recorded_primary(core, namespace):
    return core.read_namespaced_config_map("mysql-topology", namespace).data["primary"]


def check_nothing_lost(report, runner, core, base, label, writer, replicas, recovery, outcome):
    """Every acknowledged row on the recorded primary, and the same rows
    (count and checksum) on every other pod; then verify.yml must pass."""
    scenario = writer.scenario
    acked = writer.acknowledged()
    assert len(acked) >= ENOUGH, "the writer barely ran: %d acknowledged writes" % len(acked)
    primary = recorded_primary(core, base["mariadb_namespace"])
    pods = ["mysql-%d" % i for i in range(replicas)]
    on_primary = rows(runner, primary, scenario)
    assert acked <= on_primary, "acknowledged writes missing on the primary %s: %s" % (primary, sorted(acked - on_primary)[:10])
    wait_until("replicas caught up", lambda: caught_up(runner, primary, pods), timeout=180, interval=1)
    found = {p: len(rows(runner, p, scenario)) for p in pods}
    assert all(rows(runner, p, scenario) == on_primary for p in pods)
    run_playbook("verify.yml", dict(base, replicas=replicas)).check()
    report.fault(label, len(acked), found, recovery, outcome)
