"""An API server in memory, with kube_api's `request`: objects by path,
each write a new resourceVersion, a write naming a stale one refused (409)
as the real server does; PATCH is a JSON merge patch."""
import copy

from ansible_collections.mariadb_k8s.cluster.plugins.module_utils.kube_api import ApiError


def merge(target, patch):
    """RFC 7386: maps merge, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value)
    return merged


class FakeApi:
    def __init__(self, objects=None):
        self.objects, self.version, self.writes = {}, 0, []
        self.before_write = None  # called with the method and path before each write
        for path, body in (objects or {}).items():
            self.store(path, body)

    def store(self, path, body):
        self.version += 1
        body = copy.deepcopy(body)
        body.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[path] = body

    def _current(self, path):
        if path not in self.objects:
            raise ApiError(404, "%s not found" % path)
        return self.objects[path]

    def _check_version(self, path, body):
        asked = (body.get("metadata") or {}).get("resourceVersion")
        if asked is not None and asked != self._current(path)["metadata"]["resourceVersion"]:
            raise ApiError(409, "the object has been modified")

    def request(self, method, path, body=None, content_type="application/json"):
        if method == "GET":
            if path in self.objects:
                return copy.deepcopy(self.objects[path])
            items = [copy.deepcopy(obj) for key, obj in sorted(self.objects.items()) if key.rsplit("/", 1)[0] == path]
            if not items:
                raise ApiError(404, "%s not found" % path)
            return {"items": items}
        if self.before_write:
            self.before_write(method, path)
        self.writes.append((method, path, copy.deepcopy(body)))
        if method == "POST":
            created = "%s/%s" % (path, body["metadata"]["name"])
            if created in self.objects:
                raise ApiError(409, "already exists")
            self.store(created, body)
        elif method == "PUT":
            self._check_version(path, body)
            self.store(path, body)
        elif method == "PATCH":
            self._check_version(path, body)
            patched = merge(self._current(path), body)
            patched["metadata"].pop("resourceVersion", None)
            self.store(path, patched)
        elif method == "DELETE":
            self._current(path)
            del self.objects[path]
        return {}
