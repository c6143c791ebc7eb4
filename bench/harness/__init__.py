"""What the bench scripts share; each script imports from the module that owns a name, never
from another script.

- `machine`: the cores, the line a script prints first, the parameters every figure carries.
- `infrastructure`: the shared PostgreSQL (settings from OKR_PG_*), fresh schema names, and
  whether PostgreSQL and Kafka answer.
- `kafka_topics`: a topic's message count, ends and CreateTimes; removing a run's topics.
- `processes`: a service under uvicorn (`Service`) and a Python module (`Child`) as processes
  of the run: start, readiness, stop.
- `environments`: the environment of the goals service, the relay, the ledger, the notifier.
- `seeding`: a goals organisation seeded over HTTP, the check-ins sent to it, the wait until
  the service has settled.
- `http_load`: the HTTP/1.1 client and the closed and open loops that drive it.
- `cpu`: CPU and memory of processes, PostgreSQL, the broker and the machine over a phase.
- `stats`: percentiles.
- `results`: figures, their table, and their merge into bench/results/latest.json.
- `goals_backlog`: a backlog of goals domain events (for the relay and the consumers).
- `goals_history`: a goals history as contracts (for the notifier's rebuild).
- `profiling`: pyinstrument around a call, and its report.
"""
