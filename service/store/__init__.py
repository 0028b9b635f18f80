"""MongoDB persistence: one module per collection family, indexes declared in code."""
