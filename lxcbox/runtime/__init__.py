"""The runtime below a container: the LXC config (lxcconf.py), storage drivers and path lookups
inside layers (rootfs.py), cgroup limits (cgroups.py) and the security profile (security.py).

Takes plain data (paths, dicts, lists); may import only lxcbox's core and images/archive.
"""
