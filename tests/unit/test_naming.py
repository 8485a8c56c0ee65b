from netlab.lab import naming


def test_ifnames_fit_ifnamsiz_and_stay_unique():
    names = {naming.ifname("veth-", f"frontend-deployment-{i}", unique_by=f"c/{i}") for i in range(500)}
    assert len(names) == 500
    assert all(len(n) <= 15 for n in names)


def test_short_names_are_kept_readable():
    assert naming.pod_host_ifname("c1", "web-1") == "veth-web-1"
    assert naming.vpc_port("c1/node-1") == "v-c1-node-1"
    assert naming.bridge("nodes") == "br-nodes"


def test_long_names_keep_a_prefix_and_a_hash():
    name = naming.pod_host_ifname("c1", "a-very-long-pod-name")
    assert name.startswith("veth-a-") and len(name) == 15
    assert name != naming.pod_host_ifname("c2", "a-very-long-pod-name")


def test_netns_names():
    assert naming.netns("lab", "c1", "web-1") == "nl-lab-c1-web-1"
    assert naming.lab_prefix("lab") == "nl-lab-"
