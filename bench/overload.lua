-- The overload scenario (issue 16): POST add-request with a fresh Idempotency-Key per
-- request, the organisations of BENCH_DATA taken in turn, from as many connections as wrk
-- is given (-t2 -c256, -c1024): clients that do not back off, the worst a burst can do.
--
-- The key is also sent as X-Request-Id, which remit echoes and stores as the audit event's
-- correlation id: response() learns which request an answer belongs to from that header,
-- and each thread writes the ids answered 2xx to BENCH_KEYS_DIR/keys-<tid>.txt, so that
-- bench/run can check every 2xx against the rows written (exactly one effect each).
--
-- BENCH_BACKOFF=1 makes the clients do what README.md asks of them: after a 503, wait the
-- Retry-After seconds (1) give or take half, at random, before the next request. wrk's
-- delay() is asked before every request and knows no connection, so each 503 delays one
-- next request of the thread (not necessarily the same connection's): the same number of
-- pauses as 503s, which is what the load depends on.
-- Every non-2xx answer must be the JSON 503 with Retry-After; anything else is counted in
-- "other" (by status), and a 503 without Retry-After or the envelope in "bad503".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "lib.lua")

local body = '{"amount":"12.34","currency":"EUR","beneficiaryName":"Bench Supplies GmbH",' ..
   '"beneficiaryAccount":"DE89 3704 0044 0532 0130 00","purpose":"bench"}'

ok2xx, shed, bad503, other = 0, 0, 0, 0
local turn, keys, backoffs = 0, nil, 0

function init(args)
   keys = assert(io.open(os.getenv("BENCH_KEYS_DIR") .. "/keys-" .. tid .. ".txt", "w"))
   keys:setvbuf("line")   -- wrk never closes a thread's Lua state: no buffer left behind
end

function request()
   turn = turn + 1
   local o = orgs[(turn + tid) % #orgs + 1]
   local key = fresh_key("ov")
   local h = headers_for(o.creator, key)
   h["X-Request-Id"] = key
   return wrk.format("POST", "/api/v1/batches/" .. o.batch .. "/requests", h, body)
end

if os.getenv("BENCH_BACKOFF") == "1" then
   function delay()
      if backoffs == 0 then return 0 end
      backoffs = backoffs - 1
      return math.random(500, 1500)
   end
end

function response(status, headers, body)
   if status >= 200 and status <= 299 then
      ok2xx = ok2xx + 1
      keys:write(headers["X-Request-Id"] or "?", "\n")
   elseif status == 503 then
      shed = shed + 1
      backoffs = backoffs + 1
      if headers["Retry-After"] ~= "1" or
         not body:find('^{"error":{"code":"SERVICE_UNAVAILABLE"') then
         bad503 = bad503 + 1
      end
   else
      other = other + 1
      count(status)
      status_text()
   end
end

function done(summary, latency, requests)
   local t = { ok = 0, shed = 0, bad503 = 0, other = 0 }
   local statuses = {}
   for _, th in ipairs(threads_list()) do
      t.ok = t.ok + (th:get("ok2xx") or 0)
      t.shed = t.shed + (th:get("shed") or 0)
      t.bad503 = t.bad503 + (th:get("bad503") or 0)
      t.other = t.other + (th:get("other") or 0)
      local s = th:get("status_list")
      if s and s ~= "" then statuses[#statuses + 1] = s end
   end
   local e = summary.errors
   io.write(string.format(
      "OVERLOAD requests=%d duration_us=%d ok=%d shed=%d bad503=%d other=%d statuses=%s " ..
      "connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, t.ok, t.shed, t.bad503, t.other,
      #statuses > 0 and table.concat(statuses, ",") or "-",
      e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
