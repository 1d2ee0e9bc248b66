"""What the API and the web pages share: the server's state, authentication, problem details,
uploads and body limits, security headers, the analysis lanes and background jobs."""
