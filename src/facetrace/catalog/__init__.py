"""The catalog: sources, images, sightings and faces in SQL (SQLite by default, PostgreSQL for scale)."""
