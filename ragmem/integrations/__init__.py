"""Adapters that let other frameworks use ragmem stores, embedders and retrievers."""
