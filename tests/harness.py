"""Helpers shared by the e2e tests and the benchmarks: playbook runs, waits,
and a client pod that talks SQL to the cluster. They act on the cluster that
scripts/with-cluster selected (KUBECONFIG, ANSIBLE_INVENTORY)."""
import base64
import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import time

import yaml
from kubernetes import client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".venv", "collections"))

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_client_api import ClientApi  # noqa: E402
from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.pod_exec import PodExec  # noqa: E402

# What every selector of the cluster mysql selects by (roles/mariadb/vars/main.yml).
SELECTOR = {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "mysql",
            "app.kubernetes.io/managed-by": "mariadb_k8s.cluster"}
PODS = ",".join("%s=%s" % label for label in SELECTOR.items())


def inventory_vars():
    """The group_vars of the inventory in use (local cluster or the user's)."""
    path = os.path.join(os.path.dirname(os.environ["ANSIBLE_INVENTORY"]), "group_vars", "all.yml")
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def is_local_cluster():
    return os.path.basename(os.path.dirname(os.environ["ANSIBLE_INVENTORY"])) == "local"


def container_pid(core, namespace, pod, container):
    """The node's PID of a container's first process (the local cluster:
    faults sent from the node, as a hung process or a dead node would
    behave)."""
    status = [c for c in core.read_namespaced_pod(pod, namespace).status.container_statuses if c.name == container][0]
    tasks = subprocess.run(["ctr", "-n", "k8s.io", "tasks", "ls"], capture_output=True, text=True, check=True).stdout
    return re.search(r"^%s\s+(\d+)" % status.container_id.split("://")[1], tasks, re.M).group(1)


def wait_guarded(core, namespace, pod):
    """Until the pod's guard acts (self-fence.sh): it looks for a new
    cluster's settings record every 10 s until the kubelet has mounted it."""
    wait_until(pod + "'s guard acting", lambda: "guarding: the autopilot runs" in core.read_namespaced_pod_log(
        pod, namespace, container="mariadb"), timeout=120, interval=2)


def server_pid(core, namespace, pod):
    """The node's PID of a pod's mariadbd."""
    init = container_pid(core, namespace, pod, "mariadb")
    with open("/proc/%s/comm" % init) as comm:
        if comm.read().strip() == "mariadbd":  # a pod of an earlier release: mariadbd is the init
            return init
    # server.sh is the container's init; mariadbd is its child.
    with open("/proc/%s/task/%s/children" % (init, init)) as children:
        for pid in children.read().split():
            with open("/proc/%s/comm" % pid) as comm:
                if comm.read().strip() == "mariadbd":
                    return pid
    raise AssertionError("no mariadbd under the server container's init %s" % init)


def pod_netns(core, namespace, pod):
    """The name (under /run/netns) of a pod's network namespace: unlike a
    PID, it outlives the restart of the pod's containers."""
    name = subprocess.run(["ip", "netns", "identify", server_pid(core, namespace, pod)], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert name, "%s's network namespace has no name under /run/netns" % pod
    return name


def netns_drop(netns, action):
    """Drop (action -I) or let through again (-D) every packet of a pod's
    network namespace but loopback: its own probes still run, the kubelet's
    exec still reaches it, no client and no replica does. A namespace gone
    with its pod has nothing left to let through."""
    if action == "-D" and not os.path.exists("/run/netns/" + netns):
        return
    for chain, interface in (("INPUT", "-i"), ("OUTPUT", "-o")):
        subprocess.run(["ip", "netns", "exec", netns, "iptables", action, chain] + (["1"] if action == "-I" else [])
                       + ["!", interface, "lo", "-j", "DROP"], check=True)


# The autopilot's pods (roles/autopilot/templates/deployment.yml.j2).
AUTOPILOT = "app.kubernetes.io/component=autopilot"


def autopilot_copies(core, namespace):
    """The autopilot's pods that are not being deleted."""
    return {pod.metadata.name for pod in core.list_namespaced_pod(namespace, label_selector=AUTOPILOT).items
            if not pod.metadata.deletion_timestamp}


def current_uid(read, name, namespace):
    """The UID of what read (a CoreV1Api read_namespaced_* method) returns;
    None while it does not exist, as between a deletion and the object made
    again in its place."""
    try:
        return read(name, namespace).metadata.uid
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def destroy_pod_and_volume(core, namespace, pod):
    """The pod and its volume gone for good (SIGKILL, no clean shutdown): the
    StatefulSet brings the pod back on an empty volume."""
    core.delete_namespaced_persistent_volume_claim("data-" + pod, namespace)
    core.delete_namespaced_pod(pod, namespace, grace_period_seconds=0)


def pod_freezer(core, namespace, pod):
    """The freezer cgroup (v1) holding every container of a pod: all of
    them paused at once, as a hung node's pod stops (the local cluster runs
    the kubelet's cgroupfs driver)."""
    uid = core.read_namespaced_pod(pod, namespace).metadata.uid
    for qos in ("", "besteffort", "burstable"):
        path = os.path.join("/sys/fs/cgroup/freezer/kubepods", qos, "pod" + uid)
        if os.path.isdir(path):
            return path
    raise AssertionError("%s has no freezer cgroup under /sys/fs/cgroup/freezer/kubepods" % pod)


def freeze(freezer, state="FROZEN"):
    """Pause (FROZEN) or resume (THAWED) every container of a pod; a cgroup
    gone with its pod has nothing left to thaw."""
    if state == "THAWED" and not os.path.isdir(freezer):
        return
    with open(os.path.join(freezer, "freezer.state"), "w") as control:
        control.write(state)


def freezer_state(freezer):
    """FROZEN once every task of the pod stopped (FREEZING meanwhile)."""
    with open(os.path.join(freezer, "freezer.state")) as control:
        return control.read().strip()


def image(version):
    repository = inventory_vars().get("mariadb_image_repository", "docker.io/library/mariadb")
    return "%s:%s" % (repository, version)


# A change every deploy sees (the ServiceMonitor CRD, cluster-wide) is made
# while no playbook of another test module runs (they run in parallel
# processes): a deploy would find it there and its next run not, or the
# reverse, and report a change it did not cause.
CLUSTER_WIDE_LOCK = os.path.join(ROOT, "tests", "output", "cluster-wide.lock")
_HOLDING = []  # set while this process holds the lock exclusively


@contextlib.contextmanager
def _cluster_wide(mode):
    if _HOLDING:  # this process's own playbooks, inside its exclusive change
        yield
        return
    os.makedirs(os.path.dirname(CLUSTER_WIDE_LOCK), exist_ok=True)
    with open(CLUSTER_WIDE_LOCK, "a") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def cluster_wide_change():
    """Hold every other module's playbooks back while the block runs."""
    with _cluster_wide(fcntl.LOCK_EX):
        _HOLDING.append(True)
        try:
            yield
        finally:
            _HOLDING.pop()


class Playbook:
    """Runs a command (an argv list, or a shell line) from the repository root
    (or cwd) and keeps its output and the play recap's changed count."""

    def __init__(self, command, env=None, cwd=ROOT):
        started = time.monotonic()
        with _cluster_wide(fcntl.LOCK_SH):
            proc = subprocess.run(command, shell=isinstance(command, str), cwd=cwd, capture_output=True, text=True,
                                  env=dict(os.environ, **(env or {})))
        self.seconds = time.monotonic() - started
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", self.output)
        self.changed = int(recap.group(2)) if recap else None

    @property
    def text(self):
        """The output with each run of white space one space: the YAML callback
        folds a long message at any space."""
        return " ".join(self.output.split())

    @property
    def changed_tasks(self):
        """The names of the tasks that reported a change (what an idempotence
        assertion shows when it fails)."""
        chunks = re.split(r"^TASK \[(.+?)\] \**$", self.output, flags=re.M)[1:]
        return [name for name, text in zip(chunks[::2], chunks[1::2]) if re.search(r"^changed:", text, re.M)]

    def check(self):
        assert self.rc == 0, self.output[-6000:]
        return self


def run_playbook(name, extra_vars=None, verbosity=0, env=None, check=False, cwd=ROOT):
    cmd = ["ansible-playbook", name] + (["--check"] if check else [])
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    return Playbook(cmd, env, cwd)


def readme_commands():
    """The commands of the README's "Using the playbooks" table, in order."""
    with open(os.path.join(ROOT, "README.md")) as handle:
        section = handle.read().split("## Using the playbooks", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(ansible-playbook [^`]+)` \|", section, re.M)


def run_readme_command(command):
    """Runs one of the README's commands exactly as written."""
    assert command in readme_commands(), "not a command of the README: " + command
    return Playbook(command)


def drop_namespaces(core, *names):
    """Deletes the tests' namespaces with all they hold, their data included,
    without waiting: the cluster finishes while the next module runs.
    teardown.yml itself is tested in test_collection."""
    for name in names:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def fresh_namespaces(core, *names):
    """No trace of an earlier run in these namespaces: they are deleted and
    waited out (deploy.yml or the test creates them again)."""
    drop_namespaces(core, *names)
    wait_until("namespaces %s gone" % ", ".join(names),
               lambda: not {n.metadata.name for n in core.list_namespace().items} & set(names), timeout=300, interval=1)


def wait_until(what, predicate, timeout=300, interval=2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def pod_exec(api, namespace, container):
    return PodExec(ClientApi(api), namespace, container)


CLIENT_CNF = "/tmp/client.cnf"


def start_client(core, api, namespace, secret="mysql-credentials"):
    """A client pod (labelled for the NetworkPolicy) holding the root password in
    a defaults file, never in an argv. Returns a PodExec on it. A client left
    over from an interrupted run is replaced."""
    if core.list_namespaced_pod(namespace, field_selector="metadata.name=client").items:
        core.delete_namespaced_pod("client", namespace, grace_period_seconds=0)
        wait_until("old client pod gone",
                   lambda: not core.list_namespaced_pod(namespace, field_selector="metadata.name=client").items)
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="client", labels={"mariadb-client": "true"}),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=1,
            containers=[client.V1Container(
                name="client", image=image("10.11"), image_pull_policy="IfNotPresent",
                # Option-file quoting: inside double quotes, # is no comment;
                # backslash and double quote are escaped.
                command=["bash", "-c", 'p=${ROOT_PASSWORD//\\\\/\\\\\\\\}; p=${p//\\"/\\\\\\"}; '
                         'printf "[client]\\nuser=root\\npassword=\\"%s\\"\\n" "$p" > ' + CLIENT_CNF
                         + "; exec sleep infinity"],
                env=[client.V1EnvVar(name="ROOT_PASSWORD", value_from=client.V1EnvVarSource(
                    secret_key_ref=client.V1SecretKeySelector(name=secret, key="root-password")))],
            )])))
    wait_until("client pod running", lambda: core.read_namespaced_pod("client", namespace).status.phase == "Running")
    return pod_exec(api, namespace, "client")


def trust_cluster_ca(runner, core, namespace, secret="mysql-tls"):
    """The client pod connects with TLS, verifying the server's certificate
    and name against the cluster's CA (its ca.crt is no secret)."""
    ca = base64.b64decode(core.read_namespaced_secret(secret, namespace).data["ca.crt"]).decode()
    runner.run("client", ["bash", "-c", 'printf "%s" "$1" > /tmp/ca.crt; '
                          'printf "ssl-ca=/tmp/ca.crt\\nssl-verify-server-cert\\n" >> ' + CLIENT_CNF, "-", ca])


def sql(runner, host, query):
    """Run SQL as root from the client pod against host (a Service or pod DNS name)."""
    return runner.run("client", ["mariadb", "--defaults-file=" + CLIENT_CNF, "-h", host, "-N", "-B", "-e", query]).strip()


def release(tmp_path_factory, commit):
    """An earlier release's tree (git archive of commit), and the cwd and env
    of run_playbook that make Ansible use it as the collection."""
    base = tmp_path_factory.mktemp("release")
    tree = base / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    link = base / "collections" / "ansible_collections" / "mariadb_k8s" / "cluster"
    link.parent.mkdir(parents=True)
    link.symlink_to(tree)
    return {"cwd": str(tree), "env": {"ANSIBLE_COLLECTIONS_PATH": str(base / "collections")}}
