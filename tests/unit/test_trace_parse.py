"""The pure parts of `netlab trace`: nft trace lines, traversals, ofproto/trace output,
conntrack entries, hop order and the report's verdicts. The inputs are what these tools
printed on a real lab (nft 1.0.6, Open vSwitch 3.1, conntrack-tools 1.4.7)."""

from __future__ import annotations

import subprocess

from netlab.trace import conntrack, nftrace, ovstrace, path

PROBE = path.Probe("ipt/client", "ns-client", "172.16.1.4", "ipt/svc/web", "10.247.0.10", "tcp", 45123, 80)

CLIENT = """\
trace id 11111111 ip netlab-trace output packet: oif "eth0" ip saddr 172.16.1.4 ip daddr 10.247.0.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 1877 ip length 60 tcp sport 45123 tcp dport 80 tcp flags == syn tcp window 64240
trace id 11111111 ip netlab-trace output unknown rule handle 3 (verdict continue)
trace id 11111111 ip netlab-trace output policy accept
trace id 11111111 ip netlab-trace postrouting packet: oif "eth0" ip saddr 172.16.1.4 ip daddr 10.247.0.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 1877 ip length 60 tcp sport 45123 tcp dport 80 tcp flags == syn tcp window 64240
trace id 11111111 ip netlab-trace postrouting policy accept
trace id 22222222 ip netlab-trace prerouting packet: iif "eth0" ip saddr 172.16.0.2 ip daddr 172.16.1.4 ip ttl 62 ip id 0 ip length 60 tcp sport 80 tcp dport 45123 tcp flags == 0x12 tcp window 65160
trace id 22222222 ip netlab-trace prerouting unknown rule handle 4 (verdict continue)
trace id 22222222 ip netlab-trace input packet: iif "eth0" ip saddr 10.247.0.10 ip daddr 172.16.1.4 ip ttl 62 ip id 0 ip length 60 tcp sport 80 tcp dport 45123 tcp flags == 0x12 tcp window 65160
"""

NODE = """\
trace id 36c672ae ip netlab-trace prerouting packet: iif "veth-client" ether saddr 1e:cf:08:3e:68:9f ether daddr 16:08:4e:4b:da:b3 ip saddr 172.16.1.4 ip daddr 10.247.0.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 1877 ip length 60 tcp sport 45123 tcp dport 80 tcp flags == syn tcp window 64240
trace id 36c672ae ip netlab-trace prerouting unknown rule handle 3 (verdict continue)
trace id 36c672ae ip netlab-trace prerouting policy accept
trace id 36c672ae ip nat PREROUTING packet: iif "veth-client" ip saddr 172.16.1.4 ip daddr 10.247.0.10 ip ttl 64 ip id 1877 tcp sport 45123 tcp dport 80 tcp flags == syn
trace id 36c672ae ip nat PREROUTING rule  counter packets 1 bytes 40 jump KUBE-SERVICES (verdict jump KUBE-SERVICES)
trace id 36c672ae ip nat KUBE-SERVICES rule meta l4proto tcp ip daddr 10.247.0.10  tcp dport 80 counter packets 0 bytes 0 jump KUBE-SVC-LOLE4ISW44XBNF3G (verdict jump KUBE-SVC-LOLE4ISW44XBNF3G)
trace id 36c672ae ip nat KUBE-SVC-LOLE4ISW44XBNF3G rule  meta random & 2147483647 < 715827883 counter packets 0 bytes 0 jump KUBE-SEP-GW6B6CDGSEMOFTF2 (verdict jump KUBE-SEP-GW6B6CDGSEMOFTF2)
trace id 36c672ae ip nat KUBE-SEP-GW6B6CDGSEMOFTF2 rule meta l4proto tcp   counter packets 0 bytes 0 dnat to 172.16.0.2:8080 (verdict accept)
trace id 77777777 ip filter FORWARD packet: iif "veth-client" oif "eth0" ip saddr 172.16.1.4 ip daddr 172.16.0.2 ip ttl 63 ip id 1877 tcp sport 45123 tcp dport 8080 tcp flags == syn
trace id 77777777 ip filter FORWARD rule ct state new  counter packets 0 bytes 0 jump KUBE-SERVICES (verdict jump KUBE-SERVICES)
trace id 77777777 ip filter FORWARD policy accept
trace id 77777777 ip netlab-trace postrouting packet: iif "veth-client" oif "eth0" ip saddr 172.16.1.4 ip daddr 172.16.0.2 ip ttl 63 ip id 1877 tcp sport 45123 tcp dport 8080 tcp flags == syn
trace id 77777777 ip netlab-trace postrouting policy accept
trace id 36c672ae ip netlab-trace prerouting packet: iif "veth-client" ip saddr 172.16.1.4 ip daddr 10.247.0.10 ip ttl 64 ip id 1999 ip length 60 tcp sport 45123 tcp dport 80 tcp flags == syn
"""

REJECT = """\
trace id aaaa0001 ip netlab-trace prerouting packet: iif "veth-client" ip saddr 172.16.1.4 ip daddr 10.247.0.15 ip ttl 64 ip id 5 tcp sport 45123 tcp dport 80 tcp flags == syn
trace id aaaa0001 ip filter KUBE-SERVICES rule meta l4proto tcp ip daddr 10.247.0.15 tcp dport 80 counter packets 0 bytes 0 reject (verdict drop)
"""

OVS = """\
Flow: tcp,in_port=13,vlan_tci=0x0000,dl_src=0a:58:ac:10:00:03,dl_dst=0a:58:ac:10:00:01,nw_src=172.16.0.3,nw_dst=172.16.1.2,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=45000,tp_dst=8080,tcp_flags=0

bridge("br-int")
----------------
 0. ip,in_port=13,nw_src=172.16.0.3, priority 100
    resubmit(,20)
20. ip,nw_dst=172.16.1.0/24, priority 100
    set_field:192.168.0.11->tun_dst
    output:2
     -> output to native tunnel
     -> tunneling to 192.168.0.11 via br-phy

bridge("br-phy")
----------------
 0. priority 0
    NORMAL
     -> forwarding to learned port

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=13,nw_src=172.16.0.3,nw_dst=172.16.1.0/24,nw_ecn=0,nw_frag=no
Datapath actions: tnl_push(tnl_port(3),header(size=50,type=4,eth(dst=0a:58:c0:a8:00:0b,src=0a:58:c0:a8:00:0a,dl_type=0x0800),ipv4(src=192.168.0.10,dst=192.168.0.11,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x64)),out_port(7)),6
"""

OVS_RECIRC = """\
bridge("br-int")
----------------
 0. ip,in_port=2, priority 100
    resubmit(,20)
20. ip,nw_dst=172.16.1.2, priority 200
    ct(table=30,zone=1)
    drop
     -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table 30.

Final flow: unchanged
Datapath actions: ct(zone=1),recirc(0x2)

===============================================================================
recirc(0x2) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
===============================================================================

Flow: recirc_id=0x2,ct_state=new|trk,ct_zone=1,eth,tcp,in_port=2

bridge("br-int")
----------------
    thaw
        Resuming from table 30
30. ip,nw_dst=172.16.1.2, priority 100
    set_field:0a:58:ac:10:01:02->eth_dst
    output:12

Final flow: unchanged
Datapath actions: set(eth(src=0a:58:ac:10:01:01,dst=0a:58:ac:10:01:02)),3
"""


def test_trace_lines_parse_into_events():
    e = nftrace.parse_line(NODE.splitlines()[5])
    assert (e.family, e.table, e.chain, e.kind) == ("ip", "nat", "KUBE-SERVICES", "rule")
    assert e.text == "meta l4proto tcp ip daddr 10.247.0.10 tcp dport 80 jump KUBE-SVC-LOLE4ISW44XBNF3G"
    assert e.verdict == "jump KUBE-SVC-LOLE4ISW44XBNF3G"
    p = nftrace.parse_line(NODE.splitlines()[0]).packet
    assert (p.iif, p.saddr, p.daddr, p.ttl, p.ip_id, p.proto, p.sport, p.dport, p.tcp_flags) == (
        "veth-client", "172.16.1.4", "10.247.0.10", 64, 1877, "tcp", 45123, 80, "syn")
    assert nftrace.parse_line("add table ip netlab-trace") is None


def test_a_copied_packet_keeps_its_traversal_by_ip_id():
    ts = nftrace.traversals(NODE.splitlines())
    assert len(ts) == 2  # the SYN, and a retransmission (another IP id)
    syn = ts[0]
    assert syn.left.oif == "eth0" and syn.left.daddr == "172.16.0.2" and syn.delivered is None
    assert [r.chain for r in syn.rules] == ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-LOLE4ISW44XBNF3G",
                                            "KUBE-SEP-GW6B6CDGSEMOFTF2", "FORWARD"]
    assert syn.dropped_by is None


def test_reject_is_where_the_packet_died():
    [t] = nftrace.traversals(REJECT.splitlines())
    assert not t.ended and t.dropped_by.chain == "KUBE-SERVICES"


def test_the_trace_table_marks_only_the_probes_flow_and_is_valid_nft():
    text = nftrace.ruleset("tcp", 45123)
    assert "meta l4proto tcp th sport 45123 meta nftrace set 1" in text
    assert "meta l4proto tcp th dport 45123 meta nftrace set 1" in text
    assert "icmp id 7 meta nftrace set 1" in nftrace.ruleset("icmp", 7)
    check = subprocess.run(["nft", "-c", "-f", "-"], input=text, text=True, capture_output=True)
    assert check.returncode == 0 or "Operation not permitted" in check.stderr, check.stderr


def test_hops_follow_the_ttl_and_the_sender_comes_first():
    found = {"ns-node": nftrace.traversals(NODE.splitlines()), "ns-client": nftrace.traversals(CLIENT.splitlines())}
    request, reply = path.order(found, PROBE)
    assert [ns for ns, _ in request] == ["ns-client", "ns-node"]  # both TTL 64: the sender first
    assert all(t.first.ip_id == 1877 for _, t in request)  # the retransmission is left out
    assert [ns for ns, _ in reply] == ["ns-client"] and reply[0][1].delivered


def test_kube_proxy_chains_and_dnat_from_the_hops():
    [syn, _] = nftrace.traversals(NODE.splitlines())
    hop = {"kind": "netns", "direction": "request", "object": "ipt/node-2",
           "rules": [{"family": e.family, "table": e.table, "chain": e.chain, "rule": e.text, "verdict": e.verdict}
                     for e in syn.rules]}
    assert path.kube_proxy([hop]) == [{"object": "ipt/node-2", "dnat": "172.16.0.2:8080",
                                       "chains": ["KUBE-SVC-LOLE4ISW44XBNF3G", "KUBE-SEP-GW6B6CDGSEMOFTF2"]}]


def test_ofproto_trace_tables_tunnel_and_output():
    t = ovstrace.parse(OVS)
    assert [(f.bridge, f.table, f.priority) for f in t.flows] == [("br-int", 0, 100), ("br-int", 20, 100),
                                                                   ("br-phy", 0, 0)]
    assert t.flows[1].actions == ["set_field:192.168.0.11->tun_dst", "output:2"]
    assert t.flows[1].notes[0] == "output to native tunnel"
    assert t.output_port == 2 and not t.dropped
    assert t.tunnel == {"src": "192.168.0.10", "dst": "192.168.0.11", "dst_port": 4789, "vni": 100}


def test_ofproto_trace_follows_a_conntrack_recirculation():
    t = ovstrace.parse(OVS_RECIRC)
    assert [f.table for f in t.flows] == [0, 20, 30]
    assert t.flows[2].actions == ["set_field:0a:58:ac:10:01:02->eth_dst", "output:12"]
    assert t.output_port == 12 and t.tunnel is None
    assert ovstrace.parse("bridge(\"br-int\")\n 0. priority 0\n    drop\nDatapath actions: drop\n").dropped


def test_conntrack_entries_name_the_nat():
    [e] = conntrack.parse("tcp      6 116 TIME_WAIT src=172.16.1.4 dst=10.247.0.10 sport=45123 dport=80 "
                          "src=172.16.0.2 dst=172.16.1.4 sport=8080 dport=45123 [ASSURED] mark=0 use=1\n")
    assert e.state == "TIME_WAIT"
    assert e.nat() == [{"type": "dnat", "from": "10.247.0.10:80", "to": "172.16.0.2:8080"}]
    [m] = conntrack.parse("udp      17 29 src=172.16.0.3 dst=192.168.0.13 sport=41000 dport=80 "
                          "src=192.168.0.13 dst=192.168.0.10 sport=80 dport=41000 mark=0 use=1")
    assert m.nat() == [{"type": "snat", "from": "172.16.0.3:41000", "to": "192.168.0.10:41000"}]
    [i] = conntrack.parse("icmp     1 29 src=192.168.0.13 dst=172.16.0.2 type=8 code=0 id=7 "
                          "src=172.16.0.2 dst=192.168.0.13 type=0 code=0 id=7 mark=0 use=1")
    assert i.nat() == []


def test_died_names_the_rule_or_the_missing_route():
    hop = {"kind": "netns", "direction": "request", "object": "vpc", "netns": "ns-vpc", "fate": "dropped",
           "dropped_by": None, "route": {"dst": "172.16.1.2", "error": "Network is unreachable"}}
    assert path.died([hop], False)["reason"] == "no route to 172.16.1.2 (Network is unreachable)"
    rule = {"family": "ip", "table": "filter", "chain": "KUBE-SERVICES", "rule": "reject", "verdict": "drop"}
    assert path.died([{**hop, "dropped_by": rule, "route": None}], False)["rule"] == rule
    assert path.died([{**hop, "fate": "delivered"}], True) is None


def test_a_security_group_verdict_names_the_group_and_rule():
    from netlab.trace import path as trace_path

    sg = lambda chain, rule, verdict: {"family": "ip", "table": "netlab-sg", "chain": chain,  # noqa: E731
                                       "rule": rule, "verdict": verdict}
    rules = [sg("forward", "ip saddr vmap { 172.16.0.0/24 : jump out-c/n1 }", "jump out-c/n1"),
             sg("out-c/n1", 'return comment "c-cce-node: outbound all to 0.0.0.0/0"', "return"),
             sg("forward", "ip daddr vmap { 192.168.1.11 : jump in-db }", "jump in-db"),
             sg("in-db", 'drop comment "db: no inbound rule of db-sg admits it"', "drop")]
    verdicts = trace_path.security_group_verdicts(rules)
    assert [(v["member"], v["direction"], v["verdict"], v["why"]) for v in verdicts] == [
        ("c/n1", "outbound", "accept", "c-cce-node admits it (outbound all to 0.0.0.0/0)"),
        ("db", "inbound", "drop", "no inbound rule of db-sg admits it")]
    hop = {"kind": "netns", "fate": "dropped", "direction": "request", "object": "vpc", "netns": "nl-x.vpc",
           "dropped_by": rules[-1], "route": None, "security_groups": verdicts, "in": "br-nodes", "out": None,
           "packet_in": "a → b", "packet_out": "a → b", "rules": rules, "nat": []}
    assert trace_path.died([hop], False)["reason"] == \
        "security groups of db (inbound): no inbound rule of db-sg admits it"
    _, _, details = trace_path.hop_lines(hop)
    assert details[-2:] == ["security group db inbound: no inbound rule of db-sg admits it",
                            "DROPPED here by the security groups of db"]
    assert not any("vmap" in d for d in details)
