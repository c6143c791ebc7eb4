"""The OKR suite's test kit, for tests, end-to-end tests and benchmarks only (never imported by
runtime code, never in an image; `make install` installs it with the dev requirements).

- okr_testkit.clock: the kits' "now" (a moment of today, whatever the date) and a cycle
  around it, so no test depends on the day it runs;
- okr_testkit.goals: goals settings on SQLite/PostgreSQL, development tokens, the small
  organisation (build_org) with its active cycle around now;
- okr_testkit.notifier: notifier settings sharing the goals kit's JWT secret;
- okr_testkit.suite: both contexts in one process, driven by one FakeClock (open_suite, Suite)."""
