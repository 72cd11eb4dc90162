"""Serving the embedded node's JSON-RPC over HTTP (uvicorn), on loopback by default."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ledger.node import MAX_REQUEST_BYTES, Node

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8545


def create_app(node: Node) -> Starlette:
    """The HTTP face of a node: POST / takes JSON-RPC; GET / says what this is."""

    async def rpc(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            return JSONResponse(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": f"request over {MAX_REQUEST_BYTES} bytes"},
                },
                status_code=413,
            )
        body = await request.body()
        answer = node.answer_at_once(body) or await run_in_threadpool(node.handle, body)
        return Response(answer, media_type="application/json")

    async def about(_: Request) -> Response:
        head = node.block_number()
        return JSONResponse(
            {
                "node": "elicence embedded node",
                "chainId": node.chain_id,
                "blockNumber": head,
                "rpc": "POST JSON-RPC 2.0 to this URL",
            }
        )

    return Starlette(routes=[Route("/", rpc, methods=["POST"]), Route("/", about, methods=["GET"])])


def serve(home: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Run the node until SIGINT/SIGTERM; the chain file is closed on the way out."""
    import uvicorn

    node = Node(home)
    try:
        print(
            f"elicence node: chain id {node.chain_id}, head block {node.block_number()}, "
            f"data in {home}, listening on http://{host}:{port}",
            flush=True,
        )
        uvicorn.run(create_app(node), host=host, port=port, log_level="warning", access_log=False)
    finally:
        node.close()
