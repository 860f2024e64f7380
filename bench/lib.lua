-- Shared by the bench/*.lua wrk scripts (loaded with dofile from the script's own directory).
--
-- Every script reads BENCH_DATA: one line per organisation, written by bench/run,
--   index creatorToken approverToken treasurerToken batchId requestId
-- and counts, per thread, the responses that are not 2xx, which wrk's own summary does not
-- (it counts only status > 399). done() prints one machine-readable line for bench/run:
--   BENCH requests=N duration_us=N p50_us=N p99_us=N max_us=N non2xx=N socket=N ...

orgs = {}
for line in io.lines(os.getenv("BENCH_DATA")) do
   local f = {}
   for w in line:gmatch("%S+") do f[#f + 1] = w end
   orgs[#orgs + 1] = { creator = f[2], approver = f[3], treasurer = f[4], batch = f[5],
                       request = f[6] }
end

run_id = os.getenv("BENCH_RUN") or tostring(os.time())
local threads, nthreads = {}, 0

-- Each thread learns its 1-based index; with -tN -cN a thread is one connection.
function setup(thread)
   nthreads = nthreads + 1
   thread:set("tid", nthreads)
   threads[nthreads] = thread
end

-- The threads, for a script's own done().
function threads_list() return threads end

non2xx, by_status, seq = 0, {}, 0

function count(status)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      by_status[status] = (by_status[status] or 0) + 1
   end
end

-- A fresh Idempotency-Key: unique across runs, threads and requests.
function fresh_key(tag)
   seq = seq + 1
   return string.format("%s-%s-%d-%d", run_id, tag, tid, seq)
end

function headers_for(token, key)
   local h = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
   if key then h["Idempotency-Key"] = key end
   return h
end

function done(summary, latency, requests)
   local bad, statuses, flows = 0, {}, 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
      flows = flows + (t:get("flows") or 0)
      local s = t:get("status_list")
      if s and s ~= "" then statuses[#statuses + 1] = s end
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d " ..
      "socket=%d connect=%d read=%d write=%d timeout=%d flows=%d statuses=%s\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, bad, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write,
      e.timeout, flows, table.concat(statuses, ",") ~= "" and table.concat(statuses, ",") or "-"))
end

-- thread:get can only read plain values: keep the per-status counts as text too.
function status_text()
   local parts = {}
   for s, n in pairs(by_status) do parts[#parts + 1] = s .. ":" .. n end
   status_list = table.concat(parts, ",")
end
