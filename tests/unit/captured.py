"""Output captured from real MariaDB 10.11 and 11.8 pods (tests/unit/fixtures)."""
import os

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def read(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def names(suffix):
    """Fixture file names ending in suffix, e.g. '-mysql-0.txt' for every primary."""
    return sorted(f for f in os.listdir(FIXTURES) if f.endswith(suffix))
