"""OKR goals context: directory, cycles, objectives with key results, alignment, boards."""
