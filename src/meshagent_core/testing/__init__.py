"""Test helpers shipped with the protocol core: conformance vectors (`meshagent_core.testing.vectors`)
and Hypothesis strategies (`meshagent_core.testing.strategies`, which needs the `hypothesis`
extra: `pip install 'meshagent-trio[hypothesis]'`)."""
