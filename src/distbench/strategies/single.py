"""`single`: one process, all cores; the baseline every other row is compared with."""

from distbench.strategies.base import Strategy


class SingleStrategy(Strategy):
    name = "single"
