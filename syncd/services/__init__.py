"""Business rules: what the server does with a request, between the web layer and the store."""
