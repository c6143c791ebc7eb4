"""Pure domain of the notifier: the Follow aggregate and the reminder rules. No I/O."""
