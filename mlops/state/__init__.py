"""Content digests and their cache, doit's state store (snapshot + journal), and locks across runs."""
