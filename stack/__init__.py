"""The vnet TCP/IP stack: sans-IO protocol engines. Imports neither vnet nor firewall."""
