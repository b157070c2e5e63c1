import pytest

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.rollout import images, label_selector, outdated, pending
from k8s_objects import pod, sts


def test_all_ready_on_revision_is_done():
    assert pending([pod(0), pod(1), pod(2)], sts()) == []


def test_missing_and_unready_pods_are_named():
    assert pending([pod(0), pod(1, ready=False)], sts()) == [
        "mysql-1: not Ready",
        "mysql-2: not created yet",
    ]


@pytest.mark.parametrize("partition, expected", [
    (2, []),  # ordinals 0 and 1 may stay on the old revision
    (1, ["mysql-1: not on update revision new yet"]),
    (0, ["mysql-0: not on update revision new yet", "mysql-1: not on update revision new yet"]),
])
def test_partition_limits_which_pods_must_be_updated(partition, expected):
    pods = [pod(0, revision="old"), pod(1, revision="old"), pod(2)]
    assert pending(pods, sts(partition=partition)) == expected


def test_pods_beyond_replicas_are_ignored_after_scale_in():
    assert pending([pod(0), pod(1), pod(2), pod(3, ready=False)], sts()) == []


def test_replicas_limits_the_wait_to_the_first_ordinals():
    assert pending([pod(0), pod(1), pod(2, ready=False)], sts(), replicas=2) == []


def test_terminating_pod_is_pending():
    assert pending([pod(0), pod(1), pod(2, terminating=True)], sts()) == ["mysql-2: terminating"]


def test_unobserved_spec_is_pending():
    assert pending([pod(0)], sts(observed=1)) == ["mysql: controller has not seen the new spec yet"]


def test_pod_images_maps_server_container_by_pod():
    pods = [pod(1, image="b:2"), pod(0, image="a:1")]
    assert images(pods, "mariadb") == {"mysql-0": "a:1", "mysql-1": "b:2"}


def test_label_selector_from_match_labels():
    assert label_selector(sts()) == (
        "app.kubernetes.io/instance=mysql,app.kubernetes.io/managed-by=mariadb_k8s.cluster,app.kubernetes.io/name=mariadb")


def test_outdated_names_the_pods_not_on_the_update_revision():
    pods = [pod(2, revision="old"), pod(0, revision="old"), pod(1)]
    assert outdated(pods, sts(partition=1)) == ["mysql-0", "mysql-2"]
    assert outdated([pod(0), pod(1)], sts()) == []
