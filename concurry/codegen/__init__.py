"""One introspection of a worker class (spec), rendered as runtime proxies and as .pyi stubs."""
