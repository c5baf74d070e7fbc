"""The room client, written once for every event loop.

This code awaits nothing but what a `Backend` hands it (events, channels, task groups, byte
streams): `meshagent_trio` binds it to Trio, `meshagent_anyio` to AnyIO (asyncio or Trio).
"""
