"""A small Streamable HTTP MCP server for tests/tools.rs: one `search` tool whose
hits are structured content ({url, title}), answering JSON (no SSE). It appends
what each tools/call carried — the Authorization and Idempotency-Key headers and
the request's _meta — to the JSON-lines file named by argv[2], so the test can
check what the orchestrator sent. Listens on 127.0.0.1:argv[1] (0 = any free
port; the chosen port is printed as "port N")."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = sys.argv[2]

TOOL = {
    "name": "search",
    "description": "Search the knowledge base; returns hits with url and title.",
    "inputSchema": {
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "required": ["q"],
    },
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Mcp-Session-Id", "kb-session-1")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(405)

    def do_DELETE(self):
        self.reply(200)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        msg = json.loads(self.rfile.read(length) or b"{}")
        method, rid = msg.get("method"), msg.get("id")
        if rid is None:
            return self.reply(202)
        params = msg.get("params") or {}
        if method == "initialize":
            result = {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "kb-http-fixture", "version": "1.0.0"},
            }
        elif method == "tools/list":
            result = {"tools": [TOOL]}
        elif method == "tools/call":
            with open(LOG, "a") as f:
                f.write(json.dumps({
                    "authorization": self.headers.get("Authorization"),
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "meta": params.get("_meta"),
                    "arguments": params.get("arguments"),
                }) + "\n")
            q = (params.get("arguments") or {}).get("q", "")
            hits = [{"url": "https://kb.example/hits/leases", "title": "Leases and fencing"}]
            result = {
                "content": [{"type": "text", "text": f"1 hit for {q}: Leases and fencing"}],
                "structuredContent": {"hits": hits},
            }
        else:
            return self.reply(200, {"jsonrpc": "2.0", "id": rid,
                                    "error": {"code": -32601, "message": "method not found"}})
        self.reply(200, {"jsonrpc": "2.0", "id": rid, "result": result})


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
