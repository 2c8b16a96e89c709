"""milliwatt on Ray Serve: the gateway and each model tier as deployments, per PoP."""
