"""`ansible-galaxy collection build` ships the collection only, with real metadata."""
import json
import os
import re
import subprocess
import sys
import tarfile
from importlib.resources import files
from urllib.parse import urlparse

import pytest
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_DIRS = ("meta", "plugins", "roles", "playbooks")
ALLOWED_TOP = set(SHIPPED_DIRS) | {"README.md", "CHANGELOG.md", "LICENSE", "MANIFEST.json", "FILES.json", "tests"}
# tests/ ships only what Galaxy's importer reads: the sanity ignore files.
ALLOWED_TESTS = re.compile(r"^tests(/sanity(/ignore-[0-9.]+\.txt)?)?$")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(out), ROOT], check=True, capture_output=True)
    (tarball,) = out.glob("*.tar.gz")
    with tarfile.open(tarball) as tar:
        return set(tar.getnames()), json.load(tar.extractfile("MANIFEST.json"))["collection_info"]


def test_every_collection_file_is_shipped(artifact):
    members, _ = artifact
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *SHIPPED_DIRS],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines()
    present = {path for path in listed if os.path.exists(os.path.join(ROOT, path))}
    assert present and not present - members, sorted(present - members)
    assert {"README.md", "CHANGELOG.md", "MANIFEST.json", "FILES.json"} <= members


def test_nothing_but_the_collection_is_shipped(artifact):
    members, _ = artifact
    unexpected = sorted(m for m in members
                        if m.split("/")[0] not in ALLOWED_TOP or m.split("/")[0] == "tests" and not ALLOWED_TESTS.match(m))
    assert not unexpected


def test_manifest_metadata(artifact):
    _, info = artifact
    with open(os.path.join(ROOT, "CHANGELOG.md")) as changelog:
        newest = re.search(r"^## (\S+)", changelog.read(), re.M).group(1)
    assert (info["namespace"], info["name"], info["version"]) == ("mariadb_k8s", "cluster", newest)
    assert info["license"] == ["GPL-3.0-or-later"] and info["readme"] == "README.md"
    assert info["description"] and {"kubernetes", "mariadb"} <= set(info["tags"])
    for key in ("repository", "documentation", "homepage", "issues"):
        host = urlparse(info[key] or "").hostname or ""
        assert not re.search(r"(^|\.)(example\.(com|net|org)|invalid|example|test|localhost)$", host), (key, info[key])


def used_collections():
    """Every other collection whose modules or plugins the shipped files
    name by FQCN (ansible.builtin and ansible.posix's callback aside, which
    ansible-core and the repository's own config bring)."""
    used = set()
    for top in SHIPPED_DIRS:
        for base, _, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                if name.endswith((".yml", ".yaml", ".py", ".j2")):
                    with open(os.path.join(base, name)) as handle:
                        used |= set(re.findall(r"\b([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:", handle.read()))
    return {c for c in used if c.split(".")[0] in ("kubernetes", "community")}


def test_every_collection_used_is_declared_at_the_tested_version(artifact):
    _, info = artifact
    assert {"kubernetes.core", "community.crypto"} <= used_collections()
    assert set(info["dependencies"]) == used_collections()
    for name, required in info["dependencies"].items():
        # The copy bundled in the pinned `ansible` package, which the tests run with.
        bundled = files("ansible_collections.%s" % name) / "MANIFEST.json"
        tested = json.loads(bundled.read_text())["collection_info"]["version"]
        assert meets_requirements(tested, required), (name, tested, required)
