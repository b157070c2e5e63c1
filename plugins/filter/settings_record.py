# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's settings record: each setting's value as the play resolved
it, in the type its argument spec declares. A value from the command line
(-e replicas=5) is a string, the same value from the inventory an int; the
record holds one form, so writing it again changes nothing."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

_CASTS = {"int": int, "float": float, "bool": boolean, "str": str}


def settings_record(values, options):
    """values: {name: value}; options: the argument spec's options of those names."""
    record = {}
    for name, value in values.items():
        cast = _CASTS.get(options[name].get("type", "str"))
        try:
            record[name] = cast(value) if cast else value
        except (TypeError, ValueError) as exc:
            raise AnsibleFilterError("%s: cannot record %r as %s: %s" % (name, value, options[name]["type"], exc))
    return record


class FilterModule(object):
    def filters(self):
        return {"settings_record": settings_record}
