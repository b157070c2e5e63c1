"""The mysqld exporter's page, parsed (Prometheus text format) and judged:
shared by the e2e tests, which scrape the pods, and the unit tests, which
read pages captured from the exporters of Debian's packages."""
import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?[0-9]+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')
# Seconds a replica may be behind on an idle cluster.
MAX_LAG = 10


def parse(text):
    """{metric name: [(labels dict, float value)]}. Comments and blank lines are
    skipped; any other line that is not a sample raises ValueError, so a page
    that is not metrics never passes for one without samples."""
    metrics = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        sample = _SAMPLE.match(line)
        if not sample:
            raise ValueError("line %d is not a sample: %r" % (number, line))
        name, label_text, value = sample.groups()
        labels, position = {}, 0
        while label_text and position < len(label_text):
            label = _LABEL.match(label_text, position)
            if not label:
                raise ValueError("line %d has malformed labels: %r" % (number, line))
            labels[label.group(1)] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), label.group(2))
            position = label.end()
        metrics.setdefault(name, []).append((labels, float(value)))
    return metrics


def value(metrics, name):
    """The value of a metric with exactly one sample, else None."""
    samples = metrics.get(name, [])
    return samples[0][1] if len(samples) == 1 else None


def problems(metrics, replica):
    """What one pod's metrics say is wrong: the server is down; a replica's IO or
    SQL thread stopped or it is more than MAX_LAG seconds behind; the primary
    replicates from somewhere; no thread states or connections are exported."""
    found = []
    if value(metrics, "mysql_up") != 1:
        found.append("mysql_up is %s" % value(metrics, "mysql_up"))
    replication = sorted(name for name in metrics if name.startswith("mysql_slave_status_"))
    if replica:
        for name in ("mysql_slave_status_slave_io_running", "mysql_slave_status_slave_sql_running"):
            if value(metrics, name) != 1:
                found.append("%s is %s" % (name, value(metrics, name)))
        lag = value(metrics, "mysql_slave_status_seconds_behind_master")
        if lag is None or not 0 <= lag <= MAX_LAG:
            found.append("mysql_slave_status_seconds_behind_master is %s" % lag)
    elif replication:
        found.append("the primary exports replication status: %s" % ", ".join(replication[:3]))
    if not sum(sample for _, sample in metrics.get("mysql_info_schema_processlist_threads", [])) > 0:
        found.append("no thread states (mysql_info_schema_processlist_threads)")
    if not (value(metrics, "mysql_global_status_threads_connected") or 0) > 0:
        found.append("mysql_global_status_threads_connected is %s" % value(metrics, "mysql_global_status_threads_connected"))
    return found
