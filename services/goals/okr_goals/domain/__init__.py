"""Pure domain model: aggregates, their events, formulas and access rules. No I/O here."""
