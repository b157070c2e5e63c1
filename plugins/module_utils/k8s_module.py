"""Start-up shared by this collection's modules: kubernetes.core's connection
options (kubeconfig, context, host, ...) plus the module's own, and an API
client built from them."""

import copy

from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException


def run(options, execute):
    """Build the module from `options`, then call execute(module, api_client)
    with a kubernetes.client.ApiClient for the configured cluster."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(options)
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=spec, supports_check_mode=True)
    try:
        execute(module, get_api_client(module).client.client)
    except CoreException as exc:
        module.fail_from_exception(exc)
