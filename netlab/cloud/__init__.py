"""Cloud objects around the clusters: the VPC, its subnets and route table, VPC hosts.

One module per cloud object (the internet gateway, EIPs, NAT gateway, ELB, peering and
security groups will sit beside `vpc.py`).
"""
