"""upstream_sim: an OpenAI-compatible chat-completions simulator, with latency and faults.

It stands in for the LLM API behind every app's tutor chat, so a benchmark measures the apps'
relaying, never a real model. A raw ASGI app under uvicorn (uvloop + httptools): token chunks
are pre-encoded, so a token costs a concatenation and a write; one process holds thousands of
concurrent streams.

Run
    python -m upstream_sim --port 8099 [--ttft-ms 300 --inter-token-ms 30 --tokens 20]
                           [--fault none --slow-ms 60000 --fault-after 3] [--workers N]
    stackbench upstream --port 8099
    from upstream_sim.server import running_simulator, start_subprocess, create_app
        with running_simulator(ttft_ms=5, tokens=10) as sim:   # subprocess, free port
            sim.url            # "http://127.0.0.1:PORT/v1", the OpenAI base URL
            sim.control(fault="disconnect"); sim.stats(); sim.reset_stats()
        sim = start_subprocess(port=8099, workers=2, cpus=(1,)); ...; sim.stop()
        app = create_app(SimConfig(ttft_ms=0))                 # in-process ASGI app

Endpoints (also served without the /v1 prefix)
    POST /v1/chat/completions  {"model", "messages", "stream"?, "stream_options"?}
        stream: true  -> text/event-stream: `data: {chunk}` lines as OpenAI sends them: a first
            chunk with delta {"role": "assistant", "content": "", "refusal": null}, one chunk per
            content token, a chunk with delta {} and finish_reason "stop", with
            stream_options.include_usage a usage chunk (choices []), then `data: [DONE]`.
        stream: false -> one `chat.completion` JSON object, sent when the stream would have ended.
        Answer text: the words of `chunks.ANSWER`, cycled, each token a word plus a trailing
        space, so "".join(tokens) == chunks.answer_text(n).
        Bad requests (invalid JSON, missing model or messages, bad roles, bad X-Sim-* values)
        get 400 with OpenAI's error shape {"error": {"message", "type", "param", "code"}}.
    GET  /v1/models, /v1/models/{id}   the configured model
    GET  /health                        {"status": "ok"}
    GET  /control                       the runtime settings in force
    POST /control                       partial update, e.g. {"fault": "fail"}; {"reset": true}
                                        first restores the startup settings; applies to every
                                        worker (shared memory map); answers the new settings
    GET  /stats                         counters summed over workers: requests, completions,
                                        streams_active, streams_completed, tokens_sent, faults,
                                        client_disconnects, bad_requests, workers
    POST /stats/reset                   zero the counters (all but streams_active)

Settings, each from (later wins): defaults < UPSTREAM_SIM_<NAME> env vars < CLI flags
< POST /control < X-Sim-* request headers < a `[[name:value ...]]` prefix of the last user
message (the only channel that passes through an app, which sets no headers of its own).
    ttft_ms         300     time to first token              X-Sim-TTFT-Ms
    inter_token_ms  30      delay between tokens             X-Sim-Inter-Token-Ms
    tokens          20      content tokens per answer        X-Sim-Tokens
    fault           none    see below                        X-Sim-Fault
    slow_ms         60000   the `slow` fault's first-token delay  X-Sim-Slow-Ms
    fault_after     3       tokens before a mid-stream fault X-Sim-Fault-After
    model           tutor-sim  listed by /v1/models (completions echo the request's model)
    Magic examples: "[[fault:disconnect]] why?", "[[fault:status:429, tokens:5]] hi".

Faults
    fail        HTTP 500 with an OpenAI-style server_error body
    status:NNN  that HTTP status (200-599) with an OpenAI-style error body (429 rate limit, …)
    slow        headers at once, then nothing until slow_ms: beyond any client's read timeout
    disconnect  fault_after tokens, then the connection is dropped mid-body (no [DONE])
    truncate    fault_after tokens, then a clean end of the HTTP body without stop or [DONE]
    malformed   fault_after tokens, then a chunk of broken JSON, then stop and [DONE]
    Non-streamed answers: disconnect/truncate cut the JSON body and drop the connection,
    malformed sends half of it as a complete (invalid) body.

Timing
    Each completion response carries X-Sim-Started: the server's time.monotonic() once the
    request body was read (CLOCK_MONOTONIC is one clock for every process on a Linux machine,
    so a client on the same machine can compare it with its own). Token i (0-based) is written
    at started + ttft + i * inter_token (the role chunk with token 0); the schedule is absolute,
    so a late wake-up sends every token already due in one write instead of drifting. The
    first token is never early; later ones are within the event loop's ~1 ms timer resolution.
    The response also echoes the effective X-Sim-TTFT-Ms, -Inter-Token-Ms, -Tokens, -Fault.
"""

from upstream_sim.config import SimConfig

__all__ = ["SimConfig"]
