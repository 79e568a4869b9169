-- GET STACKBENCH_PATH with "{id}" replaced by a random id of STACKBENCH_IDS(_FILE).
-- All requests are formatted once in init(); request() only picks one.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local requests = {}

setup = common.setup
done = common.done
if common.counting() then
  response = common.response
end

function init(args)
  common.seed()
  local ids = common.load_ids()
  assert(#ids > 0, "get_ids.lua: no ids (set STACKBENCH_IDS_FILE or STACKBENCH_IDS)")
  local template = common.env("STACKBENCH_PATH", "/{id}")
  local method = common.env("STACKBENCH_METHOD", "GET")
  local headers = common.headers()
  for i, id in ipairs(ids) do
    requests[i] = wrk.format(method, common.fill(template, { id = id }), headers)
  end
end

function request()
  return common.sending(requests[math.random(#requests)])
end
