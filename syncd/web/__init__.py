"""aiohttp handlers, middlewares and the route table: parse, call a service, shape the reply."""
