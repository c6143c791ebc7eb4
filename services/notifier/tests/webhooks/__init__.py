"""The notifier's webhook tests, by topic. A package, so that its conftest is imported as
``webhooks.conftest`` and leaves the module named ``conftest`` to the suites that import from it
(tests/e2e)."""
