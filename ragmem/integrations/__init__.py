"""Adapters that let other frameworks use ragmem."""
