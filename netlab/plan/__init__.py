"""Plans: what `up` will do to the kernel, as data.

`netlab.plan.ops` is the vocabulary (typed operations, each printable as the command it
equals) and is re-exported here; `netlab.plan.planner` assembles a lab's plan from the
registries of network models, cloud objects, kube-proxy and processes. The vocabulary
imports nothing of netlab, so every layer above `apply/` can build ops without circles.
"""

from netlab.plan.ops import *  # noqa: F401,F403
from netlab.plan.ops import Op, Plan  # noqa: F401  (named for readers and linters)
