"""A cluster on one machine: N network namespaces on one bridge, links shaped with tc tbf, to
rehearse multi-node runs (`distbench cluster up|status|down`, `distbench launch ... --netns`).

Owns the namespaces' names, addresses and link rates, and the commands and files that build
them. Needs root and iproute2 (`ip`, `tc`) at run time; imports only `system` and `core`.
Bandwidth is shaped, delay is not (no netem).
"""
