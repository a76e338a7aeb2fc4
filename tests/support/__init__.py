"""Test helpers: a real distribution registry, a token server, a counting proxy and a seeder."""
