"""stackbench: the command line and `serve` (the private database and the seed data are in
`provision`, below both this and `loadtests`)."""
