"""`dynatable stress`: load a running cluster like cassandra-stress and YCSB (docs/stress.md).

Modules, one concept each: settings (the command line, a pure parser), distribution
(cassandra-stress's fixed/uniform/gaussian/seq), zipfian (YCSB's skewed generators), standard
(write/read/mixed on keyspace1.standard1), ycsb (core workloads A-F), schema_setup (the table on
first use), runner (the asyncio load driver, closed loop or fixed rate), latency (HdrHistogram
bookkeeping), report (progress, summary, YCSB lines, JSON, CSV), plot (matplotlib), command (the
driver behind the CLI).
"""
