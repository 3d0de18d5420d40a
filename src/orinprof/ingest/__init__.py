"""Importers: turn profiler output that users already have (trtexec JSON) into orinprof results.

An importer is not a backend: it runs nothing, it reads files."""
