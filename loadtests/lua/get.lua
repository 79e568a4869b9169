-- GET the URL's path (or STACKBENCH_PATH); the request is built once, in init().
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

wrk.method = common.env("STACKBENCH_METHOD", "GET")
wrk.path = common.env("STACKBENCH_PATH", wrk.path)
for name, value in pairs(common.headers()) do
  wrk.headers[name] = value
end

setup = common.setup
done = common.done
if common.counting() then
  response = common.response
end

local prepared = nil

function init(args)
  prepared = wrk.format()
end

-- a request() function (not wrk's static request) so that common.sending stamps each send
function request()
  return common.sending(prepared)
end
