"""The HTTP/1.1 layer the stand-ins share: plain request and reply values, and a socket server.

:mod:`.messages` holds the values passed between the socket layer and an emulated API;
:mod:`.server` moves bytes with asyncio and h11, streaming replies included; :mod:`.thread`
runs a server on its own event loop for synchronous callers. Nothing here knows which API it
serves.
"""
