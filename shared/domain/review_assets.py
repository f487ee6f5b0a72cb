"""The review page's only style and script, inline, and the Content-Security-Policy that admits exactly them
(by hash: no 'unsafe-inline', no nonce to thread through, nothing from another origin)."""

from __future__ import annotations

import base64
import hashlib

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 1.5rem;color:#1b1b1b}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.6rem 0 .4rem;border-bottom:1px solid #ccc}
h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;margin:.3rem 0;font-size:.92rem}
th,td{border:1px solid #d4d4d4;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{background:none;font-weight:600}
code{font-size:.85rem;word-break:break-all}
.status{display:inline-block;padding:.05rem .5rem;border-radius:.6rem;background:#e8e8e8;font-weight:600}
.pass{color:#116329}.fail{color:#a40e26}.none{color:#6b6b6b;font-style:italic}
#decision{border:1px solid #999;padding:.6rem 1rem;margin:1rem 0;background:#fafafa}
textarea{width:100%;min-height:4rem;box-sizing:border-box}
button{font:inherit;padding:.3rem 1rem;margin:.4rem .4rem 0 0}
#answer:empty{display:none}#answer{padding:.4rem .6rem;margin-top:.6rem;border:1px solid #999}
#answer.ok{border-color:#116329;color:#116329}#answer.refused{border-color:#a40e26;color:#a40e26}
"""

# Posts to the API the page came from: this page's path plus /approve or /reject, with its query string (the
# function key, `?code=`, when the page was opened with one). The browser adds the App Service authentication
# cookie itself (same origin); locally the approver's name goes as the x-mlops-approver header.
SCRIPT = """
(function () {
  var form = document.getElementById("decision");
  if (!form) { return; }
  var answer = document.getElementById("answer");
  function decide(action) {
    var headers = {"Content-Type": "application/json", "Accept": "application/json"};
    var approver = document.getElementById("approver");
    if (approver && approver.value.trim()) { headers["x-mlops-approver"] = approver.value.trim(); }
    var comment = document.getElementById("comment").value;
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    answer.className = "";
    answer.textContent = "sending...";
    fetch(window.location.pathname + "/" + action + window.location.search, {
      method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify({comment: comment})
    }).then(function (response) {
      return response.text().then(function (text) {
        var said = text;
        try { var body = JSON.parse(text); said = body.message || body.error || text; } catch (e) {}
        var ok = response.ok;
        answer.className = ok ? "ok" : "refused";
        answer.textContent = (ok ? "" : "refused (" + response.status + "): ") + said;
        if (!ok) { buttons.forEach(function (b) { b.disabled = false; }); }
      });
    }, function (error) {
      answer.className = "refused";
      answer.textContent = "not sent: " + error;
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }
  document.getElementById("approve").addEventListener("click", function () { decide("approve"); });
  document.getElementById("reject").addEventListener("click", function () { decide("reject"); });
})();
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src '{_sha256(SCRIPT)}'",
        f"style-src '{_sha256(STYLE)}'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
