"""The warehouse on disk: layout, the Parquet writer, manifests, paths and URIs (``uri``),
reading and hashing files (``files``), filesystems, verification."""
