"""A concurrent writer and the check that every write it saw acknowledged
survived, shared by the fault and the primary-move tests."""
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


def create_events_table(runner):
    sql(runner, "mysql-primary", "CREATE DATABASE app; CREATE TABLE app.events "
        "(scenario VARCHAR(40), seq INT, PRIMARY KEY (scenario, seq))")


def rows(runner, pod, scenario):
    return {int(x) for x in sql(runner, pod + ".mysql",
                                "SELECT seq FROM app.events WHERE scenario = '%s'" % scenario).split()}


def checksum(runner, pod):
    return sql(runner, pod + ".mysql", "CHECKSUM TABLE app.events").split()[-1]


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
    wait_until("replicas caught up", lambda: all(checksum(runner, p) == checksum(runner, primary) for p in pods),
               timeout=60, interval=1)
    found = {p: len(rows(runner, p, scenario)) for p in pods}
    assert all(rows(runner, p, scenario) == on_primary for p in pods)
    run_playbook("verify.yml", dict(base, replicas=replicas)).check()
    report.fault(label, len(acked), found, recovery, outcome)
