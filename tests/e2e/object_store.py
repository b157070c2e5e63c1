"""A real S3 object store for the e2e tests of backups and point-in-time
recovery: the Versity S3 Gateway (versitygw, built by
scripts/lib/build-versitygw.sh) in namespace object-store, serving the
directories of an emptyDir as buckets (the objects live as long as its pod),
behind the Service s3 on port 80.

The cluster's pods use `Store.endpoint`, the Service's DNS name; the tests
use the helpers below, a boto3 client on the Service's ClusterIP, which the
node of the local cluster (where the tests run) reaches through kube-proxy.
Namespace object-store has no NetworkPolicy.

    store = object_store.deploy(api)
    store.store_secret("backup", "backup-s3", prefix="run-1/")
    store.put("run-1/x", b"abc"); store.list("run-1/")  # {"run-1/x": 3}
"""
import base64
import fcntl
import os
import re
import secrets

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness import ROOT, wait_until

NAMESPACE = "object-store"
SERVICE = "s3"
CREDENTIALS = "s3-credentials"
BUCKET = "backups"
REGION = "us-east-1"
PORT = 7070
# The image's user (VERSITYGW_UID of scripts/lib/build-versitygw.sh).
UID = 1000
LOCK = "/tmp/mariadb-k8s-object-store.lock"
LABELS = {"app.kubernetes.io/name": "versitygw", "app.kubernetes.io/instance": SERVICE}


def _version():
    with open(os.path.join(ROOT, "scripts", "lib", "versions.sh")) as handle:
        return re.search(r"^VERSITYGW_VERSION=(\S+)$", handle.read(), re.M).group(1)


# Built and loaded into containerd by scripts/cluster: it cannot be pulled.
IMAGE = "localhost/versitygw:" + _version()


class Store:
    """The deployed store: where the cluster's pods find it, its bucket and
    root keys, and an S3 client on it for the tests."""

    def __init__(self, core, endpoint, host_endpoint, bucket, access_key_id, secret_access_key):
        self.core = core
        self.endpoint = endpoint
        self.host_endpoint = host_endpoint
        self.bucket = bucket
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = REGION
        self.s3 = boto3.session.Session().client(
            "s3", endpoint_url=host_endpoint, region_name=REGION,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60,
                          retries={"mode": "standard", "max_attempts": 3}))

    def list(self, prefix=""):
        """{key: size} of the objects whose key starts with prefix."""
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.update((item["Key"], item["Size"]) for item in page.get("Contents", []))
        return found

    def get(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put(self, key, data):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key):
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def truncate(self, key, size):
        """Rewrite the object with its first size bytes only (a torn upload)."""
        data = self.get(key)
        if size >= len(data):
            raise ValueError("%s has %d bytes, cannot truncate it to %d" % (key, len(data), size))
        self.put(key, data[:size])

    def store_secret(self, namespace, name, prefix=None):
        """A Secret in namespace (a DB namespace) telling a backup where to
        write: endpoint, bucket, access-key-id, secret-access-key, region and,
        given one, prefix. An existing one is replaced."""
        data = {"endpoint": self.endpoint, "bucket": self.bucket, "access-key-id": self.access_key_id,
                "secret-access-key": self.secret_access_key, "region": self.region}
        if prefix is not None:
            data["prefix"] = prefix
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
        try:
            self.core.create_namespaced_secret(namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise
            # A PUT: the keys are these only (a prefix left out is removed).
            self.core.replace_namespaced_secret(name, namespace, body)
        return name


def _ensure_namespace(core):
    def found():
        return core.list_namespace(field_selector="metadata.name=" + NAMESPACE).items
    if found() and found()[0].status.phase == "Terminating":
        wait_until("namespace %s gone" % NAMESPACE, lambda: not found(), timeout=180)
    if not found():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))


def _keys(core):
    """The root keys, generated once: a redeploy keeps them (and the pod)."""
    try:
        data = core.read_namespaced_secret(CREDENTIALS, NAMESPACE).data
    except ApiException as err:
        if err.status != 404:
            raise
        data = {"access-key-id": secrets.token_hex(10).upper(), "secret-access-key": secrets.token_hex(20)}
        core.create_namespaced_secret(NAMESPACE, client.V1Secret(
            metadata=client.V1ObjectMeta(name=CREDENTIALS), string_data=data))
        return data["access-key-id"], data["secret-access-key"]
    return tuple(base64.b64decode(data[key]).decode() for key in ("access-key-id", "secret-access-key"))


def _deployment(image):
    def key(env, name):
        return client.V1EnvVar(name=env, value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name=CREDENTIALS, key=name)))
    container = client.V1Container(
        name="versitygw", image=image, image_pull_policy="Never",
        args=["--port", ":%d" % PORT, "--health", "/health", "posix", "/data"],
        env=[key("ROOT_ACCESS_KEY", "access-key-id"), key("ROOT_SECRET_KEY", "secret-access-key")],
        ports=[client.V1ContainerPort(name="s3", container_port=PORT)],
        readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/health", port=PORT),
                                       period_seconds=2),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False, read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"])),
        # The posix backend keeps each object's metadata (ETag, checksums,
        # content type) in user.* extended attributes: the node's file
        # system has them (ext4, xfs).
        volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data"),
                       client.V1VolumeMount(name="tmp", mount_path="/tmp")])
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=SERVICE, labels=LABELS),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels=LABELS),
            strategy=client.V1DeploymentStrategy(type="Recreate"),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=LABELS),
                spec=client.V1PodSpec(
                    automount_service_account_token=False,
                    termination_grace_period_seconds=5,
                    security_context=client.V1PodSecurityContext(
                        run_as_non_root=True, run_as_user=UID, run_as_group=UID, fs_group=UID,
                        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")),
                    containers=[container],
                    volumes=[client.V1Volume(name="data", empty_dir=client.V1EmptyDirVolumeSource()),
                             client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())]))))


def _ready(core):
    """The one pod of the current spec is Ready, no other is left."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=",".join("%s=%s" % kv for kv in LABELS.items())).items
    return len(pods) == 1 and not pods[0].metadata.deletion_timestamp and any(
        c.type == "Ready" and c.status == "True" for c in pods[0].status.conditions or [])


def _answers(store):
    try:
        store.s3.list_buckets()
        return True
    except Exception:  # noqa: BLE001  # not reachable yet: kube-proxy's rules lag the endpoints
        return False


def deploy(api, bucket=BUCKET, image=IMAGE, cluster_domain="cluster.local", timeout=180):
    """Deploy the store (idempotent: a running one is kept, with its objects
    and keys), wait until it answers S3 from here, create bucket in it, and
    return the Store."""
    # Test modules run in parallel processes and share the store: one
    # deploys it at a time, the next finds it.
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _deploy(api, bucket, image, cluster_domain, timeout)


def _deploy(api, bucket, image, cluster_domain, timeout):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    if image == IMAGE and not any(IMAGE in (found.names or []) for node in core.list_node().items
                                  for found in node.status.images or []):
        raise RuntimeError("%s is not on the local cluster's node: run the tests through make e2e or make test "
                           "(MARIADB_K8S_OBJECT_STORE=1 builds and loads it)" % IMAGE)
    _ensure_namespace(core)
    access_key_id, secret_access_key = _keys(core)
    try:
        apps.create_namespaced_deployment(NAMESPACE, _deployment(image))
    except ApiException as err:
        if err.status != 409:
            raise
        # The same spec changes nothing and keeps the pod; another rolls it.
        apps.replace_namespaced_deployment(SERVICE, NAMESPACE, _deployment(image))
    try:
        service = core.read_namespaced_service(SERVICE, NAMESPACE)
    except ApiException as err:
        if err.status != 404:
            raise
        service = core.create_namespaced_service(NAMESPACE, client.V1Service(
            metadata=client.V1ObjectMeta(name=SERVICE, labels=LABELS),
            spec=client.V1ServiceSpec(selector=LABELS, ports=[
                client.V1ServicePort(name="s3", port=80, target_port=PORT)])))
    wait_until("versitygw pod Ready in %s" % NAMESPACE, lambda: _ready(core), timeout=timeout)
    store = Store(core, "http://%s.%s.svc.%s" % (SERVICE, NAMESPACE, cluster_domain),
                  "http://%s:80" % service.spec.cluster_ip, bucket, access_key_id, secret_access_key)
    wait_until("S3 answering on %s" % store.host_endpoint, lambda: _answers(store), timeout=60)
    try:
        store.s3.create_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    return store


def remove(api):
    """Delete namespace object-store, and with it every object."""
    core = client.CoreV1Api(api)
    if core.list_namespace(field_selector="metadata.name=" + NAMESPACE).items:
        core.delete_namespace(NAMESPACE)
        wait_until("namespace %s gone" % NAMESPACE,
                   lambda: not core.list_namespace(field_selector="metadata.name=" + NAMESPACE).items, timeout=180)
