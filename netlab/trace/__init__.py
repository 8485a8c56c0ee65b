"""`netlab trace`: one real probe through a running lab, and every hop it took (pure parts).

`nftrace` parses what `nft monitor` prints for traced packets (nftables rules and the rules
iptables-nft loads), `ovstrace` what `ovs-appctl ofproto/trace` prints, `conntrack` what
`conntrack -L` prints; `path` decides what to instrument and assembles the hops into the
report (JSON and table). `netlab.apply.trace` runs the programs.
"""
