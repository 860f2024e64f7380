-- GET /api/v1/requests/{id}: one request of organisation 1, read over and over. Against the
-- FastCGI hello (bench/hello.c) the same script measures the transport alone.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "lib.lua")

-- Built in init(): wrk.format needs the Host header, which wrk sets after loading the script.
function init(args)
   local o = orgs[1]
   req = wrk.format("GET", "/api/v1/requests/" .. o.request,
      { ["Authorization"] = "Bearer " .. o.creator })
end

function request() return req end

function response(status, headers, body)
   count(status)
   if status < 200 or status > 299 then status_text() end
end
