"""The vnet firewall: rules, parser, connection tracking. May import stack, never vnet."""
