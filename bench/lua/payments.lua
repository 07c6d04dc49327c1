-- wrk script: every request carries the next pre-signed payment from a file, so each request
-- is a new payment and replay protection stays on.
--
-- Environment:
--   X402_BENCH_HEADERS      file written by x402-bench: one JSON meta line, then one header a line
--   X402_BENCH_HEADER_NAME  request header to send it in (default PAYMENT-SIGNATURE)
--   X402_BENCH_OFFSET       payments to skip (those an earlier run against the same server used)
--   X402_BENCH_STOP_AFTER   stop after this many responses (a fixed request count, for profiles)
--
-- Out of payments, it sends requests without one: they are answered 402 and counted by wrk as
-- non-2xx, and `done` reports how many payments were sent, so the harness can refuse the run.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Runs in the worker thread only, so the file is loaded once.
function init(args)
  name = os.getenv("X402_BENCH_HEADER_NAME") or "PAYMENT-SIGNATURE"
  headers = {}
  local first = true
  for line in io.lines(os.getenv("X402_BENCH_HEADERS")) do
    if first then first = false else headers[#headers + 1] = line end
  end
  next_index = tonumber(os.getenv("X402_BENCH_OFFSET") or "0")
  sent = 0
  stop_after = tonumber(os.getenv("X402_BENCH_STOP_AFTER") or "0")
  responses = 0
  if stop_after > 0 then
    -- Defining `response` costs wrk a header parse per response; only profiles need it.
    response = function(status, headers, body)
      responses = responses + 1
      if responses >= stop_after then wrk.thread:stop() end
    end
  end
end

function request()
  next_index = next_index + 1
  local header = headers[next_index]
  if header == nil then
    return wrk.format("GET", wrk.path)
  end
  sent = sent + 1
  return wrk.format("GET", wrk.path, { [name] = header })
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("sent") or 0)
  end
  io.write(string.format("x402-bench payments sent: %d\n", total))
end
