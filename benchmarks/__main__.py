"""make benchmark: python -m benchmarks [--runs N] [--steps all|primary|tls|backup|autopilot]."""
import argparse
import time

from benchmarks.bench import Bench, log
from benchmarks.steps import autopilot, backup, cluster, primary, tls


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", choices=["all", "primary", "tls", "backup", "autopilot"], default="all",
                        help="primary: only the primary moves (docs/benchmarks-primary.md); tls: only what TLS costs "
                             "(docs/benchmarks-tls.md); backup: only backups and restores (docs/benchmarks-backup.md); "
                             "autopilot: only the autopilot (docs/benchmarks-autopilot.md)")
    parser.add_argument("--backup-mib", type=int, default=backup.BACKUP_MIB,
                        help="data backed up by step backup (default %(default)s MiB)")
    args = parser.parse_args()
    bench = Bench(args.runs)
    started = time.monotonic()
    try:
        if args.steps == "all":
            cluster.deploy_vs_plain(bench)
            cluster.noop_and_verify(bench)
            cluster.catch_up(bench)
            cluster.scale_out(bench)
            cluster.durability(bench)
            cluster.write(bench)
        if args.steps in ("all", "primary"):
            primary.primary_moves(bench)
            primary.write_primary(bench)
        if args.steps in ("all", "tls"):
            tls.tls_cost(bench)
            tls.write_tls(bench)
        if args.steps in ("all", "autopilot"):
            autopilot.autopilot_cost(bench)
            autopilot.write_autopilot(bench)
        if args.steps in ("all", "backup"):
            backup.backup_cost(bench, args.backup_mib)
            backup.write_backup(bench)
    finally:
        # Step backup cleans up its own namespaces; it never uses the bench namespace.
        if args.steps != "backup":
            bench.fresh()
    log("done in %.0f s; wrote docs/benchmarks%s.md" % (time.monotonic() - started, "*" if args.steps == "all" else "-" + args.steps))


main()
