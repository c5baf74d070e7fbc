"""meshagent_anyio: the MeshAgent room client on AnyIO (asyncio or Trio).

It shares the sans-IO core (`meshagent_core`) and the sub-client code with `meshagent_trio`;
only streams and task groups differ.
"""
