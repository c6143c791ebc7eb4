"""The measurements of the bench scripts, one module per phase; a script runs its phases and
prints and writes their figures. A phase uses bench/harness, and at most a smaller phase of
its own benchmark (the relay's runs the ledger on its topic, the notifier's rebuild times its
runs with notifier_rebuild_run); never a script.

- bench_goals: `goals_api` (the service on one store: throughput, fixed-rate latency, memory),
  `goals_raw` (the eventsourcing library's single saves).
- bench_backbone: `backbone_relay` (the relay on a backlog, in this process and as its own),
  `backbone_ledger` (the ledger process on the relayed backlog), `backbone_e2e` (check-in ->
  relay -> Kafka -> ledger latency).
- bench_notifier: `notifier_rebuild` with `notifier_rebuild_run` (rebuild speed),
  `notifier_latency` with `notifier_tables` (check-in -> notification latency).
"""
