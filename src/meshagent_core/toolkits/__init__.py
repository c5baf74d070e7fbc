"""The wire contract of each built-in toolkit: inputs, outputs and stream chunk headers as
msgspec Structs, one definition shared by the client facades and the server handlers."""
