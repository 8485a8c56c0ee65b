"""Registers the kernel-tier marker used by tests here until the kernel-tier harness
(tests/kernel/) registers it for the whole suite."""


def pytest_configure(config):
    config.addinivalue_line("markers", "kernel(feature): needs a kernel feature the host tier may lack "
                                       "(runs in the kernel-tier VM)")
