"""One module per device round (spec §3.5). Each exposes `async def handle(state, body) -> RoundReply`."""
