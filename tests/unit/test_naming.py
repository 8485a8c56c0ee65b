import pytest

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
    assert naming.netns("lab", "c1", "web-1") == "nl-lab.c1.web-1"
    assert naming.netns("lab", "vpc") == "nl-lab.vpc"
    assert naming.lab_prefix("lab") == "nl-lab."


def test_netns_names_cannot_collide_across_labs():
    # With '-' as the separator both were nl-a-b-c-node-1.
    one, other = naming.netns("a", "b-c", "node-1"), naming.netns("a-b", "c", "node-1")
    assert one != other
    assert one.startswith(naming.lab_prefix("a")) and not one.startswith(naming.lab_prefix("a-b"))
    assert other.startswith(naming.lab_prefix("a-b")) and not other.startswith(naming.lab_prefix("a"))
    assert (naming.lab_of_netns(one), naming.lab_of_netns(other)) == ("a", "a-b")


def test_lab_of_netns_ignores_namespaces_of_no_lab():
    assert naming.lab_of_netns("nl-x.vpc") == "x"
    for name in ("nl-capprobe-4242", "nl-kt-17-a", "nl-kptest-abc", "nl-bench-kp", "other.vpc",
                 "nl-.vpc", "nl-Bad.vpc", "nl--x.vpc", "vpc"):
        assert naming.lab_of_netns(name) is None, name


def test_lab_names_are_checked_against_the_schema():
    for good in ("a", "a-b", "t-vpc", "x" * 24, "0"):
        assert naming.check_lab_name(good) == good
    for bad in ("", ".", "..", "a/b", "../x", "-a", "a-", "A", "a.b", "a b", "x" * 25, "a\n"):
        with pytest.raises(ValueError, match="is not a valid lab name .lowercase letters, digits and '-', "
                                             "at most 24 characters"):
            naming.check_lab_name(bad)
