"""How far one deployment goes: a capacity model (:mod:`.model`), its SimPy simulation
(:mod:`.sim`) and the check of both against the real local path (:mod:`.local`).

``python -m capacity --rate 1000`` (``make capacity RATE=1000``) prints the plan for a rate and
writes a plot of latency and instances over time; docs/capacity.md explains every input.
"""
