-- wrk script: every request is a unique IT Glue-shaped webhook body (a distinct password id
-- and resource name), POSTed to the URL given on wrk's command line (for the webhook: the
-- workflow URL with its token in the path). Arguments after "--": a run offset, so that
-- bodies never repeat across runs on one tenant (a repeat would be folded as a duplicate).
-- done() prints one JSON line with the counts and wrk's latency distribution (microseconds).

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  offset = tonumber(args[1] or "0")
  counter = 0
  headers = {["Content-Type"] = "application/json"}
end

function request()
  counter = counter + 1
  -- offset * 1e9 + thread * 1e8 + n: unique over runs, threads and requests.
  local n = offset * 1000000000 + thread_index * 100000000 + counter
  local body = string.format(
    '{"resourceUrl":"https://acme.itglue.com/2412/passwords/%d","resourceName":"Bench account %d"}',
    n, n)
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
