"""Context hijacking (Sec. 3): language-model backend, prompt schemes, CounterFact, efficacy."""
