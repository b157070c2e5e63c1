"""The write Service follows the primary by its pod-name key alone: the patch
merges into the selector the services role applied, so that it keeps working
on the selector of an older release as well as on this one's; the record of
what deploy.yml last applied follows too, so its next run changes nothing."""
import json

import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import cluster
from fake_api import FakeApi

APPLIED = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mysql-primary"},
           "spec": {"selector": {"app.kubernetes.io/instance": "mysql", cluster.POD_NAME_LABEL: "mysql-0"}}}


SERVICE = "/api/v1/namespaces/db/services/mysql-primary"
RECORD = "/api/v1/namespaces/db/configmaps/mysql-topology"


def service_cluster(annotations=None):
    api = FakeApi({SERVICE: {"metadata": {"name": "mysql-primary", "annotations": annotations or {}}}})
    return api, cluster.Cluster(api, "db", "mysql")


def test_the_write_service_patch_names_only_the_pod():
    api, target = service_cluster()
    target.point_write_service("mysql-1")
    target.point_write_service(None)
    assert api.writes == [
        ("PATCH", SERVICE, {"spec": {"selector": {"statefulset.kubernetes.io/pod-name": "mysql-1"}}}),
        ("PATCH", SERVICE, {"spec": {"selector": {"statefulset.kubernetes.io/pod-name": ""}}}),
    ]


def test_the_last_applied_selector_follows_the_pod():
    api, target = service_cluster({cluster.LAST_APPLIED: json.dumps(APPLIED)})
    target.point_write_service("mysql-2")
    (_, _, body), = api.writes
    assert body["spec"] == {"selector": {cluster.POD_NAME_LABEL: "mysql-2"}}
    applied = json.loads(body["metadata"]["annotations"][cluster.LAST_APPLIED])
    assert applied == dict(APPLIED, spec={"selector": {"app.kubernetes.io/instance": "mysql", cluster.POD_NAME_LABEL: "mysql-2"}})


def record_cluster(data=None):
    """The record's ConfigMap as the API server keeps it: a patch naming
    another resourceVersion is refused (409)."""
    api = FakeApi({RECORD: {"metadata": {"name": "mysql-topology"}, "data": dict(data or {"primary": "mysql-0"})}})
    target = cluster.Cluster(api, "db", "mysql")
    target.point_write_service = lambda pod: None
    return api, target


def record_writes(api):
    return [body["data"] for method, path, body in api.writes if path == RECORD]


def record_data(api):
    return api.objects[RECORD]["data"]


def test_a_record_before_the_epoch_is_epoch_zero():
    assert record_cluster()[1].read_record() == ("mysql-0", 0)


def test_no_record_is_the_first_pod_at_epoch_zero():
    assert cluster.Cluster(FakeApi(), "db", "mysql").read_record() == ("mysql-0", 0)


def test_each_move_increments_the_epoch():
    _api, target = record_cluster({"primary": "mysql-0", "epoch": "4"})
    assert target.record_primary("mysql-1", "mysql-0", 4) == 5
    assert target.read_record() == ("mysql-1", 5)


def test_a_move_started_from_an_older_record_is_refused():
    api, target = record_cluster({"primary": "mysql-2", "epoch": "5"})
    with pytest.raises(cluster.RecordMoved) as moved:
        target.record_primary("mysql-1", "mysql-0", 4)
    assert moved.value.primary == "mysql-2" and record_writes(api) == []


def written_before_the_next_write(api, data):
    """Another writer changes the record between our read and our write."""
    def other_writer(method, path):
        api.before_write = None
        api.store(RECORD, dict(api.objects[RECORD], data=dict(record_data(api), **data)))
    api.before_write = other_writer


def test_a_move_recorded_between_read_and_write_wins():
    """Two movers read epoch 4; the other writes first: the version check refuses ours."""
    api, target = record_cluster({"primary": "mysql-0", "epoch": "4"})
    written_before_the_next_write(api, {"primary": "mysql-2", "epoch": "5"})
    with pytest.raises(cluster.RecordMoved) as moved:
        target.record_primary("mysql-1", "mysql-0", 4)
    assert moved.value.primary == "mysql-2" and record_data(api) == {"primary": "mysql-2", "epoch": "5"}


def test_another_key_written_meanwhile_does_not_stop_the_move():
    api, target = record_cluster({"primary": "mysql-0", "epoch": "4"})
    written_before_the_next_write(api, {"settings": "{}"})
    assert target.record_primary("mysql-1", "mysql-0", 4) == 5
    assert record_data(api) == {"primary": "mysql-1", "epoch": "5", "settings": "{}"}


def test_a_write_service_that_cannot_move_records_the_previous_primary_again():
    api, target = record_cluster({"primary": "mysql-0", "epoch": "4"})

    def fail(pod):
        raise RuntimeError("connection reset")
    target.point_write_service = fail
    with pytest.raises(RuntimeError):
        target.record_primary("mysql-1", "mysql-0", 4)
    assert record_writes(api) == [{"primary": "mysql-1", "epoch": "5"}, {"primary": "mysql-0", "epoch": "6"}]


def test_each_pod_is_read_within_its_own_timeout():
    target = cluster.Cluster(FakeApi({}), "db", "mysql")
    asked = {}

    class Exec:
        def run(self, pod, argv, timeout=30):
            asked[pod] = timeout
            return ""

    target.exec = Exec()
    target.read_states(["mysql-0", "mysql-1", "mysql-2"], timeout=1, timeouts={"mysql-0": 0.5})
    assert asked == {"mysql-0": 0.5, "mysql-1": 1, "mysql-2": 1}
