"""The official MCP Python SDK (PyPI `mcp`, pinned in requirements.txt) against the
real binary over Streamable HTTP, both with the initialize handshake and an
`Mcp-Session-Id` (mode="legacy", the revisions before 2026-07-28) and with the
current revision (mode="auto" probes server/discover), with an API key in the
Authorization header: it lists the tools, runs orchestrate_research with wait and
receives progress, reads the report resource, and cancels runs (with the tool, and
by cancelling a waiting call); without the key it is refused.

Run by scripts/test.sh with MCPO_BIN naming the built binary.
"""

import asyncio
import hashlib
import json
import os
import secrets
import re
import subprocess
import tempfile
import unittest
import urllib.request

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

BIN = os.environ.get("MCPO_BIN", "")
TOKEN = "mcpo_" + secrets.token_hex(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOOLS = {
    "orchestrate_research",
    "orchestrate_search",
    "get_orchestration_status",
    "get_orchestration_result",
    "cancel_orchestration",
    "list_orchestrator_patterns",
}


def start_server():
    assert BIN and os.path.exists(BIN), f"MCPO_BIN must name the built binary (got {BIN!r})"
    d = tempfile.mkdtemp(prefix="mcpo-mcp-py-")
    keys = os.path.join(d, "keys.toml")
    with open(keys, "w") as f:
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        f.write(f'[[auth.keys]]\nname = "py"\nsha256 = "{digest}"\nscopes = ["read", "write"]\n')
    env = dict(os.environ)
    env.update(
        RUST_LOG="warn",
        MCPO__SERVER__BIND="127.0.0.1:0",
        MCPO__STORAGE__SQLITE_PATH=os.path.join(d, "orchestrator.db"),
        MCPO__AUTH__KEYS_FILE=keys,
        MCPO__PROVIDERS__SIMULATED__LATENCY_MS="100",
        # A provider that never answers in time: workflows to cancel.
        MCPO__PROVIDERS__SLOW__KIND="simulated",
        MCPO__PROVIDERS__SLOW__LATENCY_MS="600000",
    )
    child = subprocess.Popen([BIN], cwd=d, env=env, stdout=subprocess.PIPE, stderr=None, text=True)
    for line in child.stdout:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return child, m.group(1)
    raise RuntimeError("server exited before listening")


def rest(base, path):
    with urllib.request.urlopen(urllib.request.Request(base + path, headers=AUTH), timeout=10) as r:
        return json.loads(r.read())


def metric(base, name):
    """An unlabelled metric's value (every series carries only `instance` then)."""
    # /metrics needs a key once keys exist (metrics.require_auth follows them).
    with urllib.request.urlopen(urllib.request.Request(base + "/metrics", headers=AUTH), timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{instance="):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


class PythonSdk(unittest.IsolatedAsyncioTestCase):
    def client(self, mode, headers=AUTH):
        """The SDK's Client over Streamable HTTP, sending the API key."""
        transport = streamable_http_client(self.url, http_client=create_mcp_http_client(headers=headers))
        return Client(transport, mode=mode)

    @classmethod
    def setUpClass(cls):
        cls.child, cls.base = start_server()
        cls.url = cls.base + "/mcp"

    @classmethod
    def tearDownClass(cls):
        cls.child.terminate()
        cls.child.wait(timeout=20)

    async def test_refused_without_the_key(self):
        with self.assertRaises(Exception):
            async with self.client("legacy", headers={}) as client:
                await client.list_tools()

    async def test_lists_tools_and_resources_in_a_session(self):
        async with self.client("legacy") as client:
            self.assertNotIn(client.session.protocol_version, ("2026-07-28",))
            # The handshake made a session that the server counts.
            self.assertGreaterEqual(metric(self.base, "mcp_sessions"), 1)
            tools = (await client.list_tools()).tools
            self.assertEqual({t.name for t in tools}, TOOLS)
            for t in tools:
                self.assertEqual(t.input_schema["type"], "object")
                self.assertEqual(t.output_schema["type"], "object")
            research = next(t for t in tools if t.name == "orchestrate_research")
            self.assertEqual(research.input_schema["required"], ["task"])
            templates = (await client.list_resource_templates()).resource_templates
            self.assertEqual(
                {t.uri_template for t in templates},
                {
                    "orchestrator://workflows/{id}",
                    "orchestrator://workflows/{id}/result",
                    "orchestrator://workflows/{id}/report.md",
                    "orchestrator://workflows/{id}/documents/{name}",
                },
            )
            patterns = await client.call_tool("list_orchestrator_patterns", {})
            self.assertFalse(patterns.is_error)
            names = [p["name"] for p in patterns.structured_content["patterns"]]
            self.assertEqual(names, ["research", "search"])
            # A tool error carries the HTTP API's code.
            bad = await client.call_tool("orchestrate_research", {"task": "x", "config": {"num_agents": 99}})
            self.assertTrue(bad.is_error)
            self.assertEqual(bad.structured_content["error"]["code"], "validation_error")
            self.assertEqual(bad.structured_content["error"]["field"], "config.num_agents")
        # Leaving the client DELETEs the session.
        for _ in range(50):
            if metric(self.base, "mcp_sessions") == 0:
                break
            await asyncio.sleep(0.1)
        self.assertEqual(metric(self.base, "mcp_sessions"), 0)

    async def run_with_wait(self, mode):
        progress = []

        async def on_progress(value, total, message):
            progress.append((value, message))

        async with self.client(mode) as client:
            if mode == "auto":
                # The current revision: no handshake, no session.
                self.assertEqual(client.session.protocol_version, "2026-07-28")
            res = await client.call_tool(
                "orchestrate_research",
                {"task": "Why is the sky blue?", "config": {"num_agents": 3}, "wait": True},
                progress_callback=on_progress,
            )
            self.assertFalse(res.is_error, res.content)
            out = res.structured_content
            self.assertEqual(out["status"], "completed")
            self.assertEqual(out["result"]["status"], "completed")
            self.assertEqual(len(out["result"]["agent_results"]), 3)
            wf = out["id"]
            # One progress notification per workflow event, in order, ending with the terminal one.
            seqs = [v for v, _ in progress]
            self.assertEqual(seqs, sorted(seqs))
            self.assertGreaterEqual(len(progress), 6)
            self.assertTrue(progress[0][1].startswith("workflow_started"), progress[0])
            self.assertTrue(progress[-1][1].startswith("workflow_completed"), progress[-1])
            # The text is the Markdown report; the report resource says the same.
            text = res.content[0].text
            self.assertTrue(text.startswith("#"), text[:80])
            report = await client.read_resource(f"orchestrator://workflows/{wf}/report.md")
            self.assertEqual(report.contents[0].mime_type, "text/markdown")
            self.assertEqual(report.contents[0].text, text)
            status = await client.read_resource(f"orchestrator://workflows/{wf}")
            self.assertEqual(json.loads(status.contents[0].text), rest(self.base, f"/v1/workflows/{wf}"))
            with self.assertRaises(MCPError) as missing:
                await client.read_resource("orchestrator://workflows/wf_nope/result")
            self.assertEqual(missing.exception.error.data["code"], "workflow_not_found")
        return wf

    async def test_wait_reports_progress_in_a_session(self):
        await self.run_with_wait("legacy")

    async def test_wait_reports_progress_with_the_current_revision(self):
        await self.run_with_wait("auto")

    async def test_cancel_with_the_tool(self):
        async with self.client("legacy") as client:
            started = await client.call_tool(
                "orchestrate_research", {"task": "never ends", "config": {"provider": "slow"}}
            )
            self.assertFalse(started.is_error, started.content)
            wf = started.structured_content["id"]
            self.assertIn(started.structured_content["status"], ("pending", "running"))
            cancelled = await client.call_tool("cancel_orchestration", {"task_id": wf})
            self.assertFalse(cancelled.is_error, cancelled.content)
            self.assertEqual(cancelled.structured_content["status"], "cancelled")
            again = await client.call_tool("cancel_orchestration", {"task_id": wf})
            self.assertTrue(again.is_error)
            self.assertEqual(again.structured_content["error"]["code"], "already_finished")
            self.assertEqual(rest(self.base, f"/v1/workflows/{wf}")["status"], "cancelled")

    async def test_cancelling_a_waiting_call_cancels_the_workflow(self):
        first_event = anyio.Event()

        async def on_progress(value, total, message):
            first_event.set()

        async with self.client("legacy") as client:
            async with anyio.create_task_group() as tg:

                async def call():
                    await client.call_tool(
                        "orchestrate_search",
                        {"query": "slow search", "config": {"provider": "slow"}, "wait": True},
                        progress_callback=on_progress,
                    )

                tg.start_soon(call)
                with anyio.fail_after(30):
                    await first_event.wait()
                # Cancelling the call makes the SDK send notifications/cancelled.
                tg.cancel_scope.cancel()
            items = rest(self.base, "/v1/workflows?pattern=search&limit=1")["items"]
            wf = items[0]["id"]
            for _ in range(100):
                if rest(self.base, f"/v1/workflows/{wf}")["status"] == "cancelled":
                    break
                await asyncio.sleep(0.1)
            self.assertEqual(rest(self.base, f"/v1/workflows/{wf}")["status"], "cancelled")


if __name__ == "__main__":
    unittest.main(verbosity=2)
