"""Benchmarks: pusherlib against the official ``pusher`` library and the server's limit.

``python -m bench`` (or ``make bench``) starts one soketi, runs every benchmark module
against it in alternating rounds, and writes ``bench/results/`` (JSON, a Markdown table
and a plot). Figures are ratios taken in one run: absolute rates drift with the machine.
"""
