"""The autopilot's rounds, with the cluster and the Lease faked: who acts,
when, and with which quorum the failover runs."""
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import autopilot, replication
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.autopilot_controller import Controller
from captured import read as fixture

PODS = ["mysql-0", "mysql-1", "mysql-2"]


class FakeCluster:
    def __init__(self):
        self.answering = {"mysql-0": replication.pod_state(fixture("status-10.11-mysql-0.txt")),
                          "mysql-1": replication.pod_state(fixture("status-10.11-mysql-1.txt")),
                          "mysql-2": replication.pod_state(fixture("status-10.11-mysql-1.txt"))}
        self.read = 0

    def read_record(self):
        return "mysql-0", 4

    def replicas(self):
        return 3

    def pods(self, count):
        return PODS[:count]

    def host(self, pod):
        return pod + ".mysql"

    def read_states(self, pods, timeout=30):
        self.read += 1
        return [(pod, self.answering.get(pod), None if pod in self.answering else "no answer") for pod in pods]

    def primary_lost(self):
        del self.answering["mysql-0"]
        for pod in ("mysql-1", "mysql-2"):
            self.answering[pod] = replication.pod_state(fixture("status-11.8-replica-reconnecting.txt"))

    def primary_back(self):
        self.answering["mysql-0"] = replication.pod_state(fixture("status-10.11-mysql-0.txt"))
        for pod in ("mysql-1", "mysql-2"):
            self.answering[pod] = replication.pod_state(fixture("status-10.11-mysql-1.txt"))


class FakeMove:
    runs = []

    def __init__(self, driver, cluster):
        self.driver = driver

    def failover(self, target):
        FakeMove.runs.append((target, self.driver.params))
        self.driver.exit_json(changed=True, primary="mysql-1", epoch=5)


def controller(cluster, held=True):
    FakeMove.runs = []
    return Controller(cluster, lambda: held, failover_after=10, move=FakeMove)


def test_a_copy_without_the_lease_reads_nothing_and_acts_on_nothing():
    cluster = FakeCluster()
    cluster.primary_lost()
    follower = controller(cluster, held=False)
    assert [follower.round(now) for now in (0, 20, 40)] == [None, None, None]
    assert cluster.read == 0 and FakeMove.runs == []


def test_a_healthy_cluster_is_left_alone():
    leader = controller(FakeCluster())
    assert leader.round(0)["state"] == autopilot.HEALTHY and FakeMove.runs == []


def test_the_primary_is_failed_over_after_failover_after_seconds_of_silence():
    cluster = FakeCluster()
    leader = controller(cluster)
    leader.round(0)
    cluster.primary_lost()
    assert leader.round(100)["state"] == autopilot.SUSPECT
    assert leader.round(109)["state"] == autopilot.SUSPECT
    verdict = leader.round(110)
    assert verdict["state"] == autopilot.FAILOVER
    assert verdict["move"] == {"changed": True, "primary": "mysql-1", "epoch": 5, "ok": True, "msg": ""}
    ((target, params),) = FakeMove.runs
    assert target is None and params["quorum"] == ["mysql-1", "mysql-2"] and params["force"] is False


def test_a_primary_that_answers_again_resets_the_count():
    cluster = FakeCluster()
    leader = controller(cluster)
    cluster.primary_lost()
    leader.round(0)
    cluster.primary_back()
    assert leader.round(8)["state"] == autopilot.HEALTHY
    del cluster.answering["mysql-0"]
    assert leader.round(12)["state"] == autopilot.SUSPECT
    assert FakeMove.runs == []


def test_a_thawed_old_primary_is_fenced():
    cluster = FakeCluster()
    fenced = []
    cluster.role = lambda pod, *args, timeout=30: fenced.append((pod, args))
    cluster.read_record = lambda: ("mysql-1", 5)
    cluster.answering["mysql-1"] = replication.pod_state(fixture("status-10.11-mysql-0.txt"))  # promoted: writable
    verdict = controller(cluster).round(0)
    assert fenced == [("mysql-0", ("isolate",))]
    assert "fenced mysql-0" in verdict["reason"]
