"""The app's Pusher endpoints for webapp2 (:mod:`.extension`) and their webhook replay records
(:mod:`.replay_store`); the answers are pusherlib's (:mod:`pusherlib.endpoints`).
"""
