"""Settings for `kaput-not run`, `plan`, `status` and the rest: a tree by subject (tree.py),
read once from the environment (environment.py) with one-line errors (parse.py), every variable
documented in one list (variables.py)."""

from kaput_not.config.environment import PLACEHOLDER_PASSWORD, SERVICE_ACCOUNT_NAMESPACE, load
from kaput_not.config.parse import ConfigError, parse_bool, parse_duration, split_address
from kaput_not.config.tree import (
    Kubernetes,
    LeaderElection,
    Netmaker,
    Output,
    Reconcile,
    Safety,
    Settings,
)
from kaput_not.config.variables import VARIABLES

__all__ = [
    "PLACEHOLDER_PASSWORD",
    "SERVICE_ACCOUNT_NAMESPACE",
    "VARIABLES",
    "ConfigError",
    "Kubernetes",
    "LeaderElection",
    "Netmaker",
    "Output",
    "Reconcile",
    "Safety",
    "Settings",
    "load",
    "parse_bool",
    "parse_duration",
    "split_address",
]
