-- POST /api/v1/batches/{id}/requests with a fresh Idempotency-Key per request.
-- BENCH_MODE=conn: thread i (one connection, -tN -cN) adds to organisation i's DRAFT batch,
--   so each organisation's audit chain has exactly one writer.
-- BENCH_MODE=org: bench/run passes a BENCH_DATA whose lines are all organisation 1, each
--   with a DRAFT batch of its own, so every writer queues on that one audit chain head.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "lib.lua")

local body = '{"amount":"12.34","currency":"EUR","beneficiaryName":"Bench Supplies GmbH",' ..
   '"beneficiaryAccount":"DE89 3704 0044 0532 0130 00","purpose":"bench"}'

function init(args)
   local mode = os.getenv("BENCH_MODE") or "conn"
   local o = orgs[tid]
   if not o then error("BENCH_DATA has no line " .. tid) end
   token, path = o.creator, "/api/v1/batches/" .. o.batch .. "/requests"
   tag = mode
end

function request()
   return wrk.format("POST", path, headers_for(token, fresh_key(tag)), body)
end

function response(status, headers, body)
   count(status)
   if status < 200 or status > 299 then status_text() end
end
