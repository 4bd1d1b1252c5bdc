"""Tasks behind one registry: toy, robosuite, Meta-World; wrappers for chunking and vectorizing."""
