"""Step tls: a clone and single-row commits with TLS against plaintext;
docs/benchmarks-tls.md."""
from benchmarks.bench import NS, commits_per_second, fill, log, playbook
from tests.harness import sql, trust_cluster_ca, wait_until

TLS_MIB = 256


# 9. What TLS costs: a clone of TLS_MIB (scale-out 2 -> 3) and single-row
# commits through mysql-primary, on a cluster with TLS off and one with
# TLS on whose client verifies the certificate.
def tls_cost(bench, rows=3000):
    for label, tls in (("plaintext", False), ("TLS", True)):
        bench.fresh()
        playbook("deploy.yml", replicas=2, mariadb_tls=tls)
        runner = bench.client()
        if tls:
            trust_cluster_ca(runner, bench.core, NS)
        fill(runner, 0, TLS_MIB)
        clones = []
        for run in range(bench.runs):
            log("clone with %s, run %d/%d" % (label, run + 1, bench.runs))
            playbook("deploy.yml", replicas=3)
            clones.append(bench.clone_seconds("mysql-2"))
            playbook("deploy.yml", replicas=2)
            bench.core.delete_namespaced_persistent_volume_claim("data-mysql-2", NS)
            wait_until("claim gone", lambda: len(bench.core.list_namespaced_persistent_volume_claim(NS).items) == 2)
        bench.record("clone of %d MiB (stream + prepare), %s" % (TLS_MIB, label), clones)
        sql(runner, "mysql-primary", "CREATE DATABASE w")
        bench.record("single-row commits, 2 pods, %s" % label,
                    [commits_per_second(runner, "w.t%d" % run, rows) for run in range(bench.runs)], unit=" rows/s")


def write_tls(bench):
    clone = "clone of %d MiB (stream + prepare), " % TLS_MIB
    bench.write_step("tls", "what TLS costs", [
        "Two clusters of 2 pods (10.11), one with `mariadb_tls=false`, one with TLS (the default), each filled",
        "to %d MiB; a scale-out to 3 clones mysql-1 into mysql-2 (over TLS, verifying the donor, on the" % TLS_MIB,
        "second); the client writes single-row commits through `mysql-primary` on one connection (verifying",
        "the server's certificate on the second). Semi-sync on in both."],
        [n for n in bench.results if n.startswith((clone, "single-row commits, 2 pods"))], [
        ("clone with TLS / plaintext clone", bench.median(clone + "TLS") / bench.median(clone + "plaintext"), "≤ 1.15"),
        ("commits per second with TLS / plaintext",
         bench.median("single-row commits, 2 pods, TLS") / bench.median("single-row commits, 2 pods, plaintext"),
         "≥ 0.90 (writes at most 10% slower)"),
    ])
