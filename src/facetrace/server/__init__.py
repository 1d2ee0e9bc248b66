"""The HTTP side: ``app`` composes the API (``api/``) and the web pages (``web/``), which share ``common/``
(authentication, problems, uploads, the server's state) and never import each other."""
