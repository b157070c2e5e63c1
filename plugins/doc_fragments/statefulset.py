"""Options of the modules that act on the cluster's StatefulSet and its pods."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  namespace:
    description: Namespace of the StatefulSet.
    type: str
    required: true
  name:
    description: Name of the StatefulSet; its pods are C(<name>-0) to C(<name>-<replicas - 1>).
    type: str
    default: mysql
"""
