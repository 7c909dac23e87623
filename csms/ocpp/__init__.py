"""OCPP-J 2.0.1 protocol layer: frames, errors, schema validation, handler registry, base consumer.

No models live here and no app knows about frames: apps register handlers with :func:`router.handles`.
"""
