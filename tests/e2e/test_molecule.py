"""The molecule scenario (molecule/default): deploy, idempotence, verify,
destroy. It runs as one more e2e module so it
takes a worker's turn like the others instead of running alone after them,
with one of the two cores idle (`make molecule` still runs it by itself)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_molecule_scenario_passes(api):
    molecule = os.path.join(os.path.dirname(sys.executable), "molecule")
    done = subprocess.run([molecule, "test"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout[-6000:]
