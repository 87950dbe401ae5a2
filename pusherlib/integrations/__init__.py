"""Web framework integrations: Flask (:mod:`.flask`) and Django (:mod:`.django`).

Both are thin adapters: the answers to channel auth, batch auth, user auth and webhooks
come from the one framework-neutral core (:mod:`.core`), which the webapp2 endpoints
use too. Import the one for your framework; neither is imported by ``pusherlib`` itself.
"""
