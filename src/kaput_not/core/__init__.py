"""The pure core: the egress contract and the planner. Standard library only; no I/O, no clock."""
