"""Package data: the built-in CounterFact set and the relation template table."""
