-- The same POST add-request with the same Idempotency-Key and body, over and over: after the
-- first (made by bench/run before the run) every one is a replay of the stored response.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "lib.lua")

local body = '{"amount":"12.34","currency":"EUR","beneficiaryName":"Bench Supplies GmbH",' ..
   '"beneficiaryAccount":"DE89 3704 0044 0532 0130 00","purpose":"bench"}'

function init(args)
   local o = orgs[1]
   req = wrk.format("POST", "/api/v1/batches/" .. o.batch .. "/requests",
      headers_for(o.creator, os.getenv("BENCH_REPLAY_KEY")), body)
end

function request() return req end

function response(status, headers, body)
   count(status)
   if status < 200 or status > 299 or headers["Idempotent-Replayed"] ~= "true" then
      if status >= 200 and status <= 299 then   -- a 2xx that was not a replay is an error too
         non2xx = non2xx + 1
         by_status["not-replayed"] = (by_status["not-replayed"] or 0) + 1
      end
      status_text()
   end
end
