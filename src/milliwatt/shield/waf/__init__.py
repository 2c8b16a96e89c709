"""A web application firewall that runs the OWASP Core Rule Set (ModSecurity SecLang).

waf = WAF.load()                       # CRS from MILLIWATT_CRS_DIR, else the packaged CRS
tx = waf.transaction(client_ip="203.0.113.7")
if (it := tx.process_request(HttpRequest("GET", "/?q=1", headers=[("Host", "x")]))):
    ...                                # answer it.status
record = tx.finish()                   # the audit record
"""

from milliwatt.shield.waf.native import use_compiled

# before any engine module is imported: the compiled build, when it matches the sources
use_compiled(__path__)

from milliwatt.shield.waf.api import (  # noqa: E402
    HttpRequest,
    HttpResponse,
    Interruption,
    MalformedRequest,
    MatchedRule,
    RuleLoadError,
    WafSettings,
)
from milliwatt.shield.waf.engine import WAF  # noqa: E402
from milliwatt.shield.waf.transaction import Transaction  # noqa: E402

__all__ = [
    "WAF",
    "HttpRequest",
    "HttpResponse",
    "Interruption",
    "MalformedRequest",
    "MatchedRule",
    "RuleLoadError",
    "Transaction",
    "WafSettings",
]
