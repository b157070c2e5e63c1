"""The NetworkPolicy enforced on the real cluster, by connection attempts that
must fail and the same attempts succeeding once the policy is switched off:
port 3306 only from the cluster's own pods and from pods labelled
`mariadb-client: "true"` in any namespace; the clone port 3307 only from the
cluster's own pods. The local cluster enforces it with kube-router's firewall;
on a user's cluster the CNI must. A cluster that does not enforce it fails
these tests: there is no skip."""
import pytest
from kubernetes import client

from tests.harness import drop_namespaces, fresh_namespaces, image, is_local_cluster, pod_exec, run_playbook, sql, start_client, wait_until

NS = "netpol"
OTHER = "netpol-other"
# The manual paths: the autopilot (on by default) has its own module, test_autopilot.
BASE = {"mariadb_namespace": NS, "mariadb_autopilot": False}
LABEL = {"mariadb-client": "true"}
# Policy changes reach the firewall within its sync after the API event.
SETTLE = 90
API = "kubernetes.default.svc.cluster.local"


def fqdn(host):
    return "%s.%s.svc.cluster.local" % (host, NS)


PRIMARY = fqdn("mysql-primary")
PODS = [fqdn("mysql-0.mysql"), fqdn("mysql-1.mysql")]


def enforcer():
    if is_local_cluster():
        return ("the local cluster's kube-router firewall does not enforce it: see `scripts/cluster status` "
                "and /var/log/mariadb-k8s/kube-router.log")
    return "this cluster does not enforce NetworkPolicies: its CNI must (Calico, Cilium, ...)"


def reach(runner, pod, host, port):
    """'open' or 'closed': whether pod opens a TCP connection to host:port
    within 5 s. A name that does not resolve is an error, never 'closed'."""
    script = ('getent hosts "$1" >/dev/null || { echo "cannot resolve $1" >&2; exit 3; }; '
              'if timeout 5 bash -c "</dev/tcp/$1/$2" 2>/dev/null; then echo open; else echo closed; fi')
    return runner.run(pod, ["bash", "-c", script, "probe", host, str(port)]).strip()


def resolves(runner, pod, hosts):
    runner.run(pod, ["getent", "hosts"] + hosts)


def expect(runner, pod, host, port, state, why):
    """Wait until pod's connection attempts to host:port are `state`."""
    try:
        wait_until("%s -> %s:%s %s" % (pod, host, port, state),
                   lambda: reach(runner, pod, host, port) == state, timeout=SETTLE)
    except TimeoutError:
        pytest.fail("%s reaches %s:%s: %s, not %s, after %ss (%s)" % (
            pod, host, port, reach(runner, pod, host, port), state, SETTLE, why))


def fresh_pod(core, namespace, name, labels):
    """A pod that only sleeps, with the server image's bash, getent and timeout;
    one left over from an interrupted run is replaced."""
    selector = "metadata.name=" + name
    if core.list_namespaced_pod(namespace, field_selector=selector).items:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        wait_until(name + " gone", lambda: not core.list_namespaced_pod(namespace, field_selector=selector).items)
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=1,
            automount_service_account_token=False,
            containers=[client.V1Container(name="probe", image=image("10.11"), image_pull_policy="IfNotPresent",
                                           command=["sleep", "infinity"])])))


def running(core, namespace, name):
    status = core.read_namespaced_pod(name, namespace).status
    return status.phase == "Running" and status.pod_ip


def ensure_namespace(core, name):
    """The namespace, active: one still terminating (an earlier run's) is waited out."""
    def found():
        return core.list_namespace(field_selector="metadata.name=" + name).items
    if found() and found()[0].status.phase == "Terminating":
        wait_until("namespace %s gone" % name, lambda: not found(), timeout=180)
    if not found():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


@pytest.fixture(scope="module")
def cluster(api, core):
    fresh_namespaces(core, NS, OTHER)
    ensure_namespace(core, NS)
    ensure_namespace(core, OTHER)
    # deploy.yml's default: the NetworkPolicy on.
    deployed = run_playbook("deploy.yml", dict(BASE, replicas=2)).check()
    probes = [(NS, "unlabelled", {}), (OTHER, "unlabelled", {}), (OTHER, "labelled", LABEL)]
    for namespace, name, labels in probes:
        fresh_pod(core, namespace, name, labels)
    for namespace, name, _ in probes:
        wait_until(name + " running in " + namespace, lambda ns=namespace, pod=name: running(core, ns, pod))
    yield deployed
    drop_namespaces(core, NS, OTHER)


@pytest.fixture(scope="module")
def here(api, cluster):
    return pod_exec(api, NS, "probe")


@pytest.fixture(scope="module")
def there(api, cluster):
    return pod_exec(api, OTHER, "probe")


@pytest.fixture(scope="module")
def labelled_client(api, core, cluster):
    return start_client(core, api, NS)


def test_every_probe_resolves_the_servers_and_connects_to_the_api(here, there, labelled_client):
    # Each probe can connect somewhere and resolve every name below, so a
    # "closed" in a later test is the firewall, not a broken probe or DNS.
    for runner, pod in ((here, "unlabelled"), (there, "unlabelled"), (there, "labelled"), (labelled_client, "client")):
        assert reach(runner, pod, API, 443) == "open", "%s cannot reach the API server" % pod
        resolves(runner, pod, [PRIMARY] + PODS)


def test_an_unlabelled_pod_in_the_namespace_cannot_reach_the_server(here):
    for host in [PRIMARY] + PODS:
        expect(here, "unlabelled", host, 3306, "closed", enforcer())
    for host in PODS:
        expect(here, "unlabelled", host, 3307, "closed", enforcer())


def test_a_labelled_client_connects_and_queries(labelled_client):
    for host in [PRIMARY] + PODS:
        expect(labelled_client, "client", host, 3306, "open", "the policy admits labelled clients")
    assert sql(labelled_client, "mysql-primary", "SELECT 1") == "1"


def test_the_clone_port_is_closed_to_a_labelled_client_and_open_to_the_cluster(api, labelled_client):
    for host in PODS:
        expect(labelled_client, "client", host, 3307, "closed", enforcer())
    # mysql-1 clones from mysql-0 through this port: the cluster's own pods pass.
    assert reach(pod_exec(api, NS, "sidecar"), "mysql-1", PODS[0], 3307) == "open"


def test_other_namespaces_reach_the_server_only_with_the_label(there):
    # namespaceSelector {} with the label's podSelector: labelled clients of
    # any namespace; the clone port stays the cluster's own.
    for host in [PRIMARY] + PODS:
        expect(there, "unlabelled", host, 3306, "closed", enforcer())
        expect(there, "labelled", host, 3306, "open", "the policy admits labelled clients of any namespace")
    for host in PODS:
        expect(there, "labelled", host, 3307, "closed", enforcer())
        expect(there, "unlabelled", host, 3307, "closed", enforcer())


def test_without_the_policy_the_refused_pods_connect_and_with_it_again_they_do_not(api, here, there, labelled_client):
    net = client.NetworkingV1Api(api)
    run_playbook("deploy.yml", dict(BASE, mariadb_network_policy=False)).check()
    assert not net.list_namespaced_network_policy(NS).items
    # The very attempts refused above, from the same pods: the policy refused them.
    expect(here, "unlabelled", PRIMARY, 3306, "open", "no NetworkPolicy any more")
    expect(there, "unlabelled", PODS[0], 3306, "open", "no NetworkPolicy any more")
    expect(labelled_client, "client", PODS[1], 3307, "open", "no NetworkPolicy any more")
    # A plain deploy keeps the policy off (the settings record): it is asked back.
    again = run_playbook("deploy.yml", BASE).check()
    assert again.changed == 0, again.changed_tasks
    assert not net.list_namespaced_network_policy(NS).items
    run_playbook("deploy.yml", dict(BASE, mariadb_network_policy=True)).check()
    assert [p.metadata.name for p in net.list_namespaced_network_policy(NS).items] == ["mysql"]
    expect(here, "unlabelled", PRIMARY, 3306, "closed", enforcer())
    expect(labelled_client, "client", PODS[1], 3307, "closed", enforcer())
    expect(labelled_client, "client", PRIMARY, 3306, "open", "the policy admits labelled clients")
