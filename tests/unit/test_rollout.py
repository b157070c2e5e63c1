import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.filter.statefulset import pod_images, statefulset_pending


def sts(replicas=3, partition=0, revision="new", generation=2, observed=2):
    return {
        "metadata": {"name": "mysql", "generation": generation},
        "spec": {"replicas": replicas, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}},
        "status": {"observedGeneration": observed, "updateRevision": revision},
    }


def pod(ordinal, revision="new", ready=True, terminating=False, image="img:1"):
    meta = {"name": "mysql-%d" % ordinal, "labels": {"controller-revision-hash": revision}}
    if terminating:
        meta["deletionTimestamp"] = "2026-11-27T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "mariadb", "image": image}, {"name": "sidecar", "image": image}]},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_all_ready_on_revision_is_done():
    assert statefulset_pending([pod(0), pod(1), pod(2)], sts()) == []


def test_missing_and_unready_pods_are_named():
    assert statefulset_pending([pod(0), pod(1, ready=False)], sts()) == [
        "mysql-1: not Ready",
        "mysql-2: not created yet",
    ]


@pytest.mark.parametrize("partition, pending", [
    (2, []),  # ordinals 0 and 1 may stay on the old revision
    (1, ["mysql-1: not on update revision new yet"]),
    (0, ["mysql-0: not on update revision new yet", "mysql-1: not on update revision new yet"]),
])
def test_partition_limits_which_pods_must_be_updated(partition, pending):
    pods = [pod(0, revision="old"), pod(1, revision="old"), pod(2)]
    assert statefulset_pending(pods, sts(partition=partition)) == pending


def test_pods_beyond_replicas_are_ignored_after_scale_in():
    assert statefulset_pending([pod(0), pod(1), pod(2), pod(3, ready=False)], sts()) == []


def test_terminating_pod_is_pending():
    assert statefulset_pending([pod(0), pod(1), pod(2, terminating=True)], sts()) == ["mysql-2: terminating"]


def test_unobserved_spec_is_pending():
    assert statefulset_pending([pod(0)], sts(observed=1)) == ["mysql: controller has not seen the new spec yet"]


def test_pod_images_maps_server_container_by_pod():
    pods = [pod(1, image="b:2"), pod(0, image="a:1")]
    assert pod_images(pods) == {"mysql-0": "a:1", "mysql-1": "b:2"}
