pytest_plugins = ["tests.tiers", "tests.container.tier"]
