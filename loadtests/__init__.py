"""The load-test harness: stacks × scenarios × drivers → results JSON → report."""
