"""Networks: bridges and veths, the IPAM, published ports and isolation as nftables rules
(networks.py).

May import only lxcbox's core.
"""
