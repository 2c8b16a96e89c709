"""`python -m milliwatt.shield.egress check URL`: the same commands as `milliwatt egress`."""

from .cli import egress_app

egress_app(prog_name="milliwatt egress")
