"""Leader election on a Lease, against a fake API server that keeps one
Lease and refuses a write whose resourceVersion is stale, as the real one
does (409 Conflict)."""
from datetime import datetime, timedelta, timezone

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils import lease as lease_utils
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import ApiError
from fake_api import FakeApi

T0 = datetime(2026, 12, 5, 12, 0, 0, tzinfo=timezone.utc)
PATH = "/apis/coordination.k8s.io/v1/namespaces/shop/leases/mysql-autopilot"


def copy_named(api, identity):
    return lease_utils.Lease(api, "shop", "mysql-autopilot", identity, duration=15)


def spec(api):
    return api.objects[PATH]["spec"]


def test_times_are_written_and_read_as_the_api_server_does():
    assert lease_utils.micro_time(T0 + timedelta(microseconds=5)) == "2026-12-05T12:00:00.000005Z"
    assert lease_utils.parse_time("2026-12-05T12:00:00.000005Z") == T0 + timedelta(microseconds=5)
    assert lease_utils.parse_time("2026-12-05T12:00:00Z") == T0


def test_the_first_copy_takes_the_lease_and_renews_it():
    api = FakeApi()
    one = copy_named(api, "autopilot-a")
    assert one.hold(T0) and one.hold(T0 + timedelta(seconds=10))
    assert (spec(api)["holderIdentity"], spec(api)["renewTime"], spec(api)["acquireTime"], spec(api)["leaseTransitions"]) == (
        "autopilot-a", "2026-12-05T12:00:10.000000Z", "2026-12-05T12:00:00.000000Z", 1)


def test_another_copy_waits_while_the_lease_is_renewed():
    api = FakeApi()
    one, two = copy_named(api, "autopilot-a"), copy_named(api, "autopilot-b")
    assert one.hold(T0)
    assert not two.hold(T0 + timedelta(seconds=14))
    assert one.hold(T0 + timedelta(seconds=14))
    assert not two.hold(T0 + timedelta(seconds=28))
    assert spec(api)["holderIdentity"] == "autopilot-a"


def test_a_lapsed_lease_is_taken_over():
    api = FakeApi()
    one, two = copy_named(api, "autopilot-a"), copy_named(api, "autopilot-b")
    assert one.hold(T0)
    assert two.hold(T0 + timedelta(seconds=16))
    assert not one.hold(T0 + timedelta(seconds=17))  # the old holder learns it lost it
    assert (spec(api)["holderIdentity"], spec(api)["leaseTransitions"]) == ("autopilot-b", 2)


def test_of_two_copies_racing_for_a_lapsed_lease_one_wins():
    api = FakeApi()
    one, two, three = copy_named(api, "autopilot-a"), copy_named(api, "autopilot-b"), copy_named(api, "autopilot-c")
    assert one.hold(T0)
    later = T0 + timedelta(seconds=20)
    # Both read the lapsed Lease before either writes.
    seen = api.request("GET", PATH)
    read = api.request
    api.request = lambda method, path, body=None, content_type=None: seen if method == "GET" else read(method, path, body)
    assert two.hold(later)
    assert not three.hold(later)
    assert spec(api)["holderIdentity"] == "autopilot-b"


def test_two_copies_creating_the_lease_at_once_one_wins():
    api = FakeApi()
    one, two = copy_named(api, "autopilot-a"), copy_named(api, "autopilot-b")
    read = api.request

    def never_found(method, path, body=None, content_type=None):
        if method == "GET":
            raise ApiError(404, "not found")
        return read(method, path, body)
    api.request = never_found
    assert one.hold(T0)
    assert not two.hold(T0)
    assert spec(api)["holderIdentity"] == "autopilot-a"


def test_a_released_lease_is_taken_at_once_and_only_its_holder_releases_it():
    api = FakeApi()
    one, two = copy_named(api, "autopilot-a"), copy_named(api, "autopilot-b")
    assert one.hold(T0)
    assert not two.release()
    assert one.release()
    assert two.hold(T0 + timedelta(seconds=1))
    assert spec(api)["holderIdentity"] == "autopilot-b"
