"""What runs inside the sandboxes of a ``WasmPoolExecutor``: the runner
task and the wire format it shares with the host."""
