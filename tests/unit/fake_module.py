"""A stand-in for AnsibleModule as the collection's modules use it: the
params (a test's defaults, then its own), check mode, and the two ways a run
ends, raised as Exit with the result."""


class Exit(Exception):
    """A module run's end: args[0] is its result, with failed (and msg)."""


class FakeModule:
    defaults = {}

    def __init__(self, check_mode=False, **params):
        self.params = dict(self.defaults, **params)
        self.check_mode = check_mode

    def exit_json(self, **result):
        raise Exit(dict(result, failed=False))

    def fail_json(self, msg, **result):
        raise Exit(dict(result, failed=True, msg=msg))
