"""What the stand-ins share: the HTTP/1.1 layer, their lifecycle, request log and fault rules.

:mod:`.messages` holds the values passed between the socket layer and an emulated API;
:mod:`.server` moves bytes with asyncio and h11, streaming replies included; :mod:`.thread`
runs a server on its own event loop for synchronous callers. Above that, the parts every
stand-in has: :mod:`.standin` (start, stop, ``async with``, ``run_in_thread``), :mod:`.paths`
(path templates), :mod:`.requestlog` (the log's core) and :mod:`.faultbook` (the fault rules'
book). Nothing here knows which API it serves.
"""
