"""The devices a frame crosses: NICs, segments (switches) and cables, impairment,
pcapng capture, and the TUN bridge to the Linux kernel.

Each is a device or a wrapper around one (smoltcp's `phy/`, gVisor's `link/`): they
move and observe frames and never parse more of them than they need. They may
touch the scheduler (timers), files (captures) and, for `tun_bridge`, a Linux TUN
device and iproute2.
"""
