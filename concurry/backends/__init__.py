"""Backends: one module per mode, each implementing ``concurry.core.backend.Backend``."""
