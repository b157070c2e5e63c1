"""StatefulSet and Pod objects in the API's JSON form, for the rollout tests."""

SELECTOR = {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "mysql",
            "app.kubernetes.io/managed-by": "mariadb_k8s.cluster"}


def sts(replicas=3, partition=0, revision="new", generation=2, observed=2):
    return {
        "metadata": {"name": "mysql", "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": SELECTOR}, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}},
        "status": {"observedGeneration": observed, "updateRevision": revision},
    }


def pod(ordinal, revision="new", ready=True, terminating=False, image="img:1"):
    meta = {"name": "mysql-%d" % ordinal, "uid": "uid-%d" % ordinal, "labels": {"controller-revision-hash": revision}}
    if terminating:
        meta["deletionTimestamp"] = "2026-11-27T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "mariadb", "image": image}, {"name": "sidecar", "image": image}]},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }
