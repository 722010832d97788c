"""Simulations: topology files (`topology`), the runner behind `vnet sim` (`runner`),
the built-in demo (`demo`) and the prefixed guest output they print (`output`)."""
