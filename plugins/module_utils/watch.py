"""Waiting on the Kubernetes API the way the collection's wait modules do:
read, and until the read says done, sleep on a watch of what was read
rather than poll, so the wait ends at the change that ends it."""

import time

try:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.watch import Watch
except ImportError:
    pass


def next_event(list_call, namespace, resource_version, seconds, **selectors):
    """Return at the first change after resource_version of the objects
    list_call lists in namespace (narrowed by field or label selectors), or
    after seconds."""
    watch = Watch()
    for _event in watch.stream(list_call, namespace, resource_version=resource_version,
                               timeout_seconds=max(1, int(seconds)), _request_timeout=seconds + 5, **selectors):
        watch.stop()


def until(read, wait_for_change, timeout, watch_seconds):
    """Call read() until it returns (True, _) or timeout seconds passed.

    read() returns (done, resource_version); LookupError (what is waited for
    does not exist) ends the wait at once. Between reads,
    wait_for_change(resource_version, seconds) returns at the next change (at
    most watch_seconds, as some changes come without an event of what is
    watched). Returns the error of the last read ("status reason" of an API
    error, the text of a connection error), None when it succeeded: the API
    may come back before the deadline, so errors are retried.
    """
    deadline = time.monotonic() + timeout
    while True:
        done, resource_version, error = False, None, None
        try:
            done, resource_version = read()
        except LookupError:
            raise
        except ApiException as exc:
            error = "%s %s" % (exc.status, exc.reason)
        except Exception as exc:  # connection errors
            error = str(exc)
        remaining = deadline - time.monotonic()
        if (done and error is None) or remaining <= 0:
            return error
        try:
            if error is None:
                wait_for_change(resource_version, min(remaining, watch_seconds))
            else:
                time.sleep(min(remaining, 1))
        except Exception:  # an expired resource version or a dropped watch: read again
            time.sleep(min(remaining, 0.2))
