-- The approval flow, one per connection (-tN -cN: thread i is organisation i):
--   create a DRAFT batch → add a request → submit → approve → mark paid (batch COMPLETED)
-- by the organisation's CREATOR, APPROVER and TREASURER, each POST with a fresh key. A step
-- that fails starts a new flow. `flows` counts the completed ones.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "lib.lua")

local add_body = '{"amount":"250.00","currency":"EUR","beneficiaryName":"Flow Partner SA",' ..
   '"beneficiaryAccount":"DE89370400440532013000","purpose":"invoice"}'

function init(args)
   o = orgs[tid]
   if not o then error("BENCH_DATA has no line " .. tid) end
   step, batch, req, flows = 0, nil, nil, 0
end

local function post(token, path, body)
   return wrk.format("POST", path, headers_for(token, fresh_key("flow")), body)
end

function request()
   if step == 0 then
      return post(o.creator, "/api/v1/batches", '{"name":"flow batch"}')
   elseif step == 1 then
      return post(o.creator, "/api/v1/batches/" .. batch .. "/requests", add_body)
   elseif step == 2 then
      return post(o.creator, "/api/v1/batches/" .. batch .. "/submit", "{}")
   elseif step == 3 then
      return post(o.approver, "/api/v1/requests/" .. req .. "/approve", '{"comment":"ok"}')
   else
      return post(o.treasurer, "/api/v1/requests/" .. req .. "/mark-paid",
         '{"paymentReference":"BENCH-' .. seq .. '"}')
   end
end

function response(status, headers, body)
   count(status)
   if status < 200 or status > 299 then
      status_text()
      step = 0
      return
   end
   if step == 0 then
      batch = body:match('"id":"(%d+)"')
   elseif step == 1 then
      req = body:match('"id":"(%d+)"')
   end
   if step == 4 then
      flows = flows + 1
      step = 0
   else
      step = step + 1
   end
end
