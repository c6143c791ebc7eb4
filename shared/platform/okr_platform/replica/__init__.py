"""The replica of goals' facts: the local copy a consuming context keeps of goals' directory
(members with managers, roles, emails; departments with leads), organisation settings, cycles,
objectives (owners, visibility, status, progress) and their key results, built from goals'
events in the context's own database (docs/replica.md).

THE INVARIANT. Every applier reads and writes only the rows of its own event's aggregate: an
organisation's orgs, departments and members rows; a cycle's cycles row; an objective's
objectives and key_results rows. An aggregate's events all share one Kafka partition (the
aggregate id is the key), in order, so replaying partitions in parallel (each worker a share
of them, in any interleaving) gives the tables a single replay gives. An applier that reads
another aggregate's rows (an objective's cycle, its organisation) breaks this and with it
every partition-parallel rebuild; reads across aggregates belong to `reads.py`, after the
batch is flushed (a context's rules, which are off during a rebuild).

Layout: schema.py (tables), facts.py (the values read and the per-event `FactsChange`),
batch.py (`ReplicaBatch`: pending writes and reads through them), directory_appliers.py,
objective_appliers.py, key_result_appliers.py (one applier per contract), projection.py
(`GoalsReplica`, the handler), reads.py (directory, settings, cycles, facts, key results)."""

from .batch import ReplicaBatch
from .facts import CycleFacts, FactsChange, KeyResultFacts, KRPoint, ObjectiveFacts, OrgFacts
from .projection import GoalsReplica
from .schema import DEFAULT_THRESHOLD, REPLICA_TABLES

__all__ = [
    "DEFAULT_THRESHOLD",
    "REPLICA_TABLES",
    "CycleFacts",
    "FactsChange",
    "GoalsReplica",
    "KRPoint",
    "KeyResultFacts",
    "ObjectiveFacts",
    "OrgFacts",
    "ReplicaBatch",
]
