"""Adapters: persistence details the domain and the use cases do not know about."""
