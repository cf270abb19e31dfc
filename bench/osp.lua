-- wrk script: POST the OSP Toolkit's captured AuthorizationRequest and
-- count answers that do not authorize with 3 tokens.
local f = assert(io.open(os.getenv("OSP_BODY") or "../osp/testdata/authorization-request.xml", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/plain"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

bad = 0
function response(status, headers, body)
  local _, tokens = body:gsub("<Token encoding", "")
  if status ~= 200 or tokens ~= 3 or not body:find("<Code>200</Code>", 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("bad_answers %d\n", total))
end
