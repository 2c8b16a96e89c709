"""milliwatt: cheap, fast, hardened AI agents. Deterministic tools first, small models next."""

__version__ = "0.1.0"
