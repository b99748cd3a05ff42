-- wrk script for `make bench`: POST one fixed JSON body to the URL given on wrk's command line and,
-- when the run ends, print one machine-readable line that bench/wrk.py parses.
-- The body is read from the file named by BENCH_BODY_FILE (one-row /v1/predict request).

local body_file = assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is not set")
local handle = assert(io.open(body_file, "rb"))
wrk.method = "POST"
wrk.body = handle:read("*a")
wrk.headers["Content-Type"] = "application/json"
handle:close()

function done(summary, latency, requests)
   local e = summary.errors
   -- Latencies and the duration are in microseconds.
   io.write(string.format(
      "BENCH_RESULT {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
      "\"latency_p50_us\":%d,\"latency_p99_us\":%d,\"latency_max_us\":%d," ..
      "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}}\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
