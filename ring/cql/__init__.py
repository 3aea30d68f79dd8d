"""The CQL native protocol front end (Cassandra's protocol v4 and v5), built sans-IO like h11.

`connection.Connection` turns received bytes into request events and responses into bytes; it
never touches a socket. Beside it, one concept per file: `notation` (the spec's [int], [string],
[value] ... primitives), `frame` (the 9-byte frame header, lz4 bodies), `segment` (v5 CRC24/CRC32
segments), `types` (CQL type options and value serialization), `requests`, `result`,
`responses`. Formats: docs/cql.md and the native protocol specs it cites.
"""
