"""Benchmarks: pusherlib against the official ``pusher`` library and the server's limit;
the worker under its servers; the app's own cost; end-to-end latency.

``python -m bench`` (or ``make bench``) starts one soketi, runs every benchmark module
against it in alternating rounds, and writes ``test-output/bench/`` (JSON, a Markdown table
and the plots); ``--save`` (``make bench SAVE=1``) writes the committed ``bench/results/``
instead. Figures are ratios taken in one run: absolute rates drift with the machine.
"""
