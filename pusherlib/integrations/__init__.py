"""Web framework integrations: Flask (:mod:`.flask`) and Django (:mod:`.django`).

Both are thin adapters: the answers to channel auth, batch auth, user auth and webhooks
come from the one framework-neutral core (:mod:`pusherlib.endpoints`), which the App
Engine app's webapp2 endpoints use too. Import the one for your framework (install
``pusherlib[flask]`` or ``pusherlib[django]``); neither is imported by ``pusherlib`` itself.
"""
