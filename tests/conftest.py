pytest_plugins = ["tests.tiers"]
