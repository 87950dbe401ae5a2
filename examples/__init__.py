"""The README's examples as runnable, tested modules."""
