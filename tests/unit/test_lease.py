"""Leader election on a Lease, against a fake API server that keeps one
Lease and refuses a write whose resourceVersion is stale, as the real one
does (409 Conflict)."""
import copy
from datetime import datetime, timedelta, timezone

import pytest
from kubernetes.client.rest import ApiException

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import lease as lease_utils

T0 = datetime(2026, 12, 5, 12, 0, 0, tzinfo=timezone.utc)


class FakeServer:
    def __init__(self):
        self.stored, self.version = None, 0

    def _save(self, body):
        self.version += 1
        body = copy.deepcopy(body)
        body.metadata.resource_version = str(self.version)
        self.stored = body


class FakeCoordination:
    server = None

    def __init__(self, _api_client):
        pass

    def read_namespaced_lease(self, name, namespace):
        if self.server.stored is None:
            raise ApiException(status=404)
        return copy.deepcopy(self.server.stored)

    def create_namespaced_lease(self, namespace, body):
        if self.server.stored is not None:
            raise ApiException(status=409)
        self.server._save(body)

    def replace_namespaced_lease(self, name, namespace, body):
        if body.metadata.resource_version != self.server.stored.metadata.resource_version:
            raise ApiException(status=409)
        self.server._save(body)


@pytest.fixture
def server(monkeypatch):
    FakeCoordination.server = FakeServer()
    monkeypatch.setattr(lease_utils, "CoordinationV1Api", FakeCoordination)
    return FakeCoordination.server


def copy_named(identity):
    return lease_utils.Lease(None, "shop", "mysql-autopilot", identity, duration=15)


def test_the_first_copy_takes_the_lease_and_renews_it(server):
    one = copy_named("autopilot-a")
    assert one.hold(T0) and one.hold(T0 + timedelta(seconds=10))
    spec = server.stored.spec
    assert (spec.holder_identity, spec.renew_time, spec.acquire_time, spec.lease_transitions) == (
        "autopilot-a", T0 + timedelta(seconds=10), T0, 1)


def test_another_copy_waits_while_the_lease_is_renewed(server):
    one, two = copy_named("autopilot-a"), copy_named("autopilot-b")
    assert one.hold(T0)
    assert not two.hold(T0 + timedelta(seconds=14))
    assert one.hold(T0 + timedelta(seconds=14))
    assert not two.hold(T0 + timedelta(seconds=28))
    assert server.stored.spec.holder_identity == "autopilot-a"


def test_a_lapsed_lease_is_taken_over(server):
    one, two = copy_named("autopilot-a"), copy_named("autopilot-b")
    assert one.hold(T0)
    assert two.hold(T0 + timedelta(seconds=16))
    assert not one.hold(T0 + timedelta(seconds=17))  # the old holder learns it lost it
    assert (server.stored.spec.holder_identity, server.stored.spec.lease_transitions) == ("autopilot-b", 2)


def test_of_two_copies_racing_for_a_lapsed_lease_one_wins(server, monkeypatch):
    one, two, three = copy_named("autopilot-a"), copy_named("autopilot-b"), copy_named("autopilot-c")
    assert one.hold(T0)
    later = T0 + timedelta(seconds=20)
    # Both read the lapsed Lease before either writes.
    read = FakeCoordination.read_namespaced_lease
    seen = read(FakeCoordination(None), "mysql-autopilot", "shop")
    monkeypatch.setattr(FakeCoordination, "read_namespaced_lease", lambda self, name, namespace: copy.deepcopy(seen))
    assert two.hold(later)
    assert not three.hold(later)
    assert server.stored.spec.holder_identity == "autopilot-b"


def test_two_copies_creating_the_lease_at_once_one_wins(server, monkeypatch):
    one, two = copy_named("autopilot-a"), copy_named("autopilot-b")
    monkeypatch.setattr(FakeCoordination, "read_namespaced_lease",
                        lambda self, name, namespace: (_ for _ in ()).throw(ApiException(status=404)))
    assert one.hold(T0)
    assert not two.hold(T0)
    assert server.stored.spec.holder_identity == "autopilot-a"
