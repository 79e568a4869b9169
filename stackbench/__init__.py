"""stackbench: the command line, the private database, and `serve`."""
