# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: concise
type: stdout
short_description: The default screen output, without the argument spec dumped on a bad value
version_added: 1.0.0
description:
  - The output of C(ansible.builtin.default), except for one thing. When a role's argument
    spec refuses a value, the failure shows the message naming the variable. The whole
    argument spec of the role (C(argument_spec_data), hundreds of lines) and the list of errors the message repeats (C(argument_errors)) are left out
    below verbosity 3 (C(-vvv)).
  - The repository's C(ansible.cfg) selects it. Elsewhere set C(stdout_callback =
    mariadb_k8s.cluster.concise) in the C([defaults]) section of C(ansible.cfg), or
    C(ANSIBLE_STDOUT_CALLBACK=mariadb_k8s.cluster.concise).
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - set as stdout in configuration
"""

from ansible.plugins.callback.default import CallbackModule as DefaultCallback


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "mariadb_k8s.cluster.concise"

    def _clean_results(self, result, task_name):
        super()._clean_results(result, task_name)
        if self._display.verbosity < 3:
            # The message repeats argument_errors, naming each variable.
            for key in ("argument_spec_data", "argument_errors"):
                result.pop(key, None)
