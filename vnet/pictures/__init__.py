"""Pictures vnet draws as plain SVG, written by our own code (no drawing library).

`ladder`: a capture's packets between hosts over time (`vnet pcap ladder`),
like Wireshark's flow graph. `topology`: a topology file's hosts, segments,
routers and addresses (`vnet sim --draw`). `svg`: the few SVG helpers they share.
"""
