"""The token and settings management API (docs/management-api.md), in Adobe's Admin API shapes.

``endpoint`` authenticates the caller, checks they are an Approver of the client, negotiates
the media type and renders every answer and error; ``views`` only parse and call the same
model methods the settings screen uses.
"""
