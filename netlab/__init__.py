"""netlab: a managed Kubernetes service's cluster network, rebuilt on real Linux datapaths."""

__version__ = "0.1.0"
