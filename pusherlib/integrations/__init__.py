"""Web framework integrations: Flask (:mod:`.flask`) and Django (:mod:`.django`), thin adapters
over :mod:`pusherlib.endpoints`; see docs/pusherlib.md, 'Flask and Django'."""
