"""The warehouse on disk: layout, the Parquet writer, manifests, filesystems, verification."""
