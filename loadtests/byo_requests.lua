-- Bring-your-own requests for wrk (written by loadtests/byo.py): STACKBENCH_IDS_FILE names a
-- Lua file that returns { {weight, { {method, path, headers, body}, ... }}, ... }. Every request
-- is formatted once in init(); request() draws a group by weight, then one of its requests.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "lua/common.lua")

local groups = {}
local total = 0

setup = common.setup
done = common.done
if common.counting() then
  response = common.response
end

function init(args)
  common.seed()
  local spec = dofile(assert(os.getenv("STACKBENCH_IDS_FILE"), "byo_requests.lua: no STACKBENCH_IDS_FILE"))
  for _, group in ipairs(spec) do
    local prepared = {}
    for _, r in ipairs(group[2]) do
      table.insert(prepared, wrk.format(r[1], r[2], r[3], r[4]))
    end
    total = total + group[1]
    table.insert(groups, { upto = total, requests = prepared })
  end
  assert(#groups > 0, "byo_requests.lua: no requests")
end

function request()
  local x = math.random() * total
  local chosen = groups[#groups]
  for _, group in ipairs(groups) do
    if x <= group.upto then
      chosen = group
      break
    end
  end
  return common.sending(chosen.requests[math.random(#chosen.requests)])
end
