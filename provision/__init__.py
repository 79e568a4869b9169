"""provision: what a run stands on, below both the command line (`stackbench`) and the harness
(`loadtests`): the private PostgreSQL server, which database a command uses, and the seed data."""
