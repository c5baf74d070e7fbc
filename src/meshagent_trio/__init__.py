"""meshagent_trio: the MeshAgent SDK on Trio, and the local MeshAgent server.

So far this package holds the command line (`meshagent-trio`, `python -m meshagent_trio`);
the room client, REST client, services and the local server build on `meshagent_core`.
"""

__version__ = "0.1.0"
