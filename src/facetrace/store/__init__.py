"""The database underneath: the engine, the declarative base, every table and the Alembic migrations.

Catalog and governance tables live here side by side so that one migration history covers them
all and no layer above has to import another to know the schema."""
