"""The application: one object that opens the settings, the catalog engine, the analyzer pool and
the job runner once, for the server and the command line."""
