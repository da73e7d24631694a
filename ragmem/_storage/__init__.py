"""The one storage model: SQLite holds the acknowledged state, caches are derived from it.

``database`` opens the SQLite file of a store or index (pragmas, one writer, typed errors),
``cache_file`` reads and writes the checksummed files that hold what is derived from it
(numpy tables, graphs, postings), and ``values`` converts values to their stored form
before anything is written.
"""
